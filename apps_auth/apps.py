from django.apps import AppConfig


class AppsAuthConfig(AppConfig):
    name = "apps_auth"
    verbose_name = "Merchant apps and credentials"
