from apps_auth.commands import AppCommand
from webhooks.selectors import webhook_endpoint_events
from webhooks.services import webhook_endpoint_create


class Command(AppCommand):
    help = "Registers a webhook endpoint for an app, as the API's POST does, and prints its secret."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--url", required=True)
        parser.add_argument("--events", default="", help="Comma-separated; none: every event.")

    def run(self, *, app, url, events, **options):
        names = [name.strip() for name in events.split(",") if name.strip()]
        endpoint = webhook_endpoint_create(app=app, url=url, events=names)
        return {
            "id": endpoint.pk,
            "url": endpoint.url,
            "events": webhook_endpoint_events(endpoint),
            "secret": endpoint.secret,
        }
