from django.apps import AppConfig


class AppsAuthConfig(AppConfig):
    name = "apps_auth"
    verbose_name = "Merchant apps and credentials"

    def ready(self):
        from apps_auth import (
            schema,  # noqa: F401  registers the OpenAPI security schemes
            services,  # noqa: F401  connects `credentials_changed`
        )
