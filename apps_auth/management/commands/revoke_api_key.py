from apps_auth.commands import AppCommand
from apps_auth.services import api_key_revoke


class Command(AppCommand):
    help = "Revokes an app's API key at once."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--key", required=True, help="The API key to revoke.")

    def run(self, *, app, key, **options):
        api_key_revoke(app=app, raw_key=key)
        return {"app_id": app.app_id, "revoked": True}
