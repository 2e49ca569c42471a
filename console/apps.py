from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Accounts and access"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from console import logfilters
        from console.api import schema  # noqa: F401 - registers the OpenAPI auth extension

        logfilters.install()
