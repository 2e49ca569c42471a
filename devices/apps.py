from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The token endpoint and GET /v1/user live in console/, below this app: register what only it knows.
        from console import hooks
        from devices.selectors.devices import user_device_counts
        from devices.services import customers
        from devices.services.devices import user_devices_release

        hooks.register_customer_token_issuer(customers.customer_token_for_client)
        hooks.register_customer_password_login(customers.customer_password_login)
        hooks.register_device_counter(user_device_counts)
        hooks.register_user_delete(cleanup=user_devices_release)
