from django.core.management.base import CommandError

from apps_auth.selectors import app_get
from core.commands import OperationsCommand


class AppCommand(OperationsCommand):
    """An operations command on one app, named by `--app APP_ID`; `run` receives the `App`."""

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--app", required=True, help="The app id.")

    def handle(self, *args, **options):
        app = app_get(app_id=options["app"])
        if app is None:
            raise CommandError(f"No app with id {options['app']!r}.")
        return super().handle(*args, **{**options, "app": app})
