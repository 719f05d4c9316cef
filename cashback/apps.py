from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


class CashbackConfig(AppConfig):
    name = "cashback"

    def ready(self):
        from cashback.roles import roles_ensure

        # After the permissions of every app exist (cashback is the last of ours to migrate).
        post_migrate.connect(roles_ensure, sender=self, dispatch_uid="cashback.roles")


class BackOfficeAdminConfig(admin_apps.AdminConfig):
    """The admin, as the back office's own site (`cashback.sites.BackOfficeSite`): named in
    INSTALLED_APPS in place of `django.contrib.admin`. Not the default config of `cashback`
    (`default = False`), which stays `CashbackConfig`."""

    default = False
    default_site = "cashback.sites.BackOfficeSite"
