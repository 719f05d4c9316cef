from django.apps import AppConfig


class ConfigConfig(AppConfig):
    name = "config"
    verbose_name = "Configuration"

    def ready(self):
        from config import sql  # noqa: F401  registers its database check
        from config.api import schema  # noqa: F401  registers the OpenAPI security schemes
