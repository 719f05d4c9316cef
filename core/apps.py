from django.apps import AppConfig
from django.core.management import call_command
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate

from core.connections import timestamptz_loader_install


def _create_cache_tables(using: str, **kwargs) -> None:
    """The shared cache's table (the throttle counters, when no REDIS_URL is set) exists after
    `migrate`, so that a deployment that ran only `migrate` serves every request."""
    call_command("createcachetable", database=using, verbosity=0)


class CoreConfig(AppConfig):
    name = "core"
    verbose_name = "Core"

    def ready(self):
        post_migrate.connect(_create_cache_tables, sender=self, dispatch_uid="core.cache_tables")
        connection_created.connect(timestamptz_loader_install, dispatch_uid="core.timestamptz")
