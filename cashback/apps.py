from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CashbackConfig(AppConfig):
    name = "cashback"

    def ready(self):
        from cashback.roles import roles_ensure

        # After the permissions of every app exist (cashback is the last of ours to migrate).
        post_migrate.connect(roles_ensure, sender=self, dispatch_uid="cashback.roles")
