from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "integrations"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from devices import events

        from integrations.delivery import events_consume

        # The bus (devices/events.py) calls its consumers in the publishing process, after the events got
        # their ids: webhook matching writes its Delivery rows there (integrations/delivery.py).
        events.register_consumer(events_consume)
