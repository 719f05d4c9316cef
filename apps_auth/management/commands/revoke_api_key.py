from apps_auth.services import api_key_revoke
from config.commands import OperationsCommand


class Command(OperationsCommand):
    help = "Revokes an app's API key at once."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--app", required=True, help="The app id.")
        parser.add_argument("--key", required=True, help="The API key to revoke.")

    def run(self, *, app, key, **options):
        target = self.app(app)
        api_key_revoke(app=target, raw_key=key)
        return {"app_id": target.app_id, "revoked": True}
