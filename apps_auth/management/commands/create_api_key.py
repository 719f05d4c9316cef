from apps_auth.services import api_key_create
from config.commands import OperationsCommand


class Command(OperationsCommand):
    help = "Issues one more API key for an app (shown once)."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--app", required=True, help="The app id.")

    def run(self, *, app, **options):
        target = self.app(app)
        issued = api_key_create(app=target)
        return {"app_id": target.app_id, "api_key": issued.raw_key}
