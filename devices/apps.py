from django.apps import AppConfig


class DevicesConfig(AppConfig):
    name = "devices"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from console import hooks
        from devices import customers

        hooks.register_customer_token_issuer(customers.customer_token_for_client)
        hooks.register_customer_password_login(customers.customer_password_login)
        hooks.register_device_counter(_user_device_counts)


def _user_device_counts(user) -> tuple[int, int]:
    from django.db.models import Count, Q

    from devices.models import Device
    from products.models import Platform

    counts = Device.objects.filter(owner=user).aggregate(
        wifi=Count("id", filter=Q(platform__connectivity=Platform.Connectivity.WIFI)),
        cellular=Count("id", filter=Q(platform__connectivity=Platform.Connectivity.CELLULAR)))
    return counts["wifi"], counts["cellular"]
