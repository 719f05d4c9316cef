from apps_auth.commands import AppCommand
from apps_auth.services import api_key_create


class Command(AppCommand):
    help = "Issues one more API key for an app (shown once)."

    def run(self, *, app, **options):
        issued = api_key_create(app=app)
        return {"app_id": app.app_id, "api_key": issued.raw_key}
