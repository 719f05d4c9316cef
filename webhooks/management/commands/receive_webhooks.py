import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.core.management.base import BaseCommand
from standardwebhooks import Webhook, WebhookVerificationError

from webhooks.models import WebhookEndpoint


class Command(BaseCommand):
    help = (
        "A local webhook receiver for development: prints each delivery's webhook-id, type and "
        "whether its signature verifies (with --secret, else with the secrets of the endpoints "
        "registered for this port), and answers 204."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--secret", action="append", default=[], help="whsec_…; repeatable")

    def handle(self, *args, host, port, secret, **options):
        command = self

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                self.send_response(204)
                self.end_headers()
                command.report(body, dict(self.headers.items()), secret or command.secrets(port))

            def log_message(self, format, *args):
                pass  # one line per delivery, from report()

        server = ThreadingHTTPServer((host, port), Receiver)
        self.stdout.write(f"Receiving webhooks on http://{host}:{port}/ (Ctrl-C stops)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()

    def secrets(self, port: int) -> list[str]:
        """The secrets in force of the endpoints that point at this port on this machine."""
        endpoints = WebhookEndpoint.objects.filter(
            deleted_at__isnull=True, url__regex=rf"^https?://(127\.0\.0\.1|localhost):{port}(/|$)"
        )
        found = []
        for endpoint in endpoints:
            found += [endpoint.secret, endpoint.previous_secret]
        return [s for s in found if s]

    def report(self, body: bytes, headers: dict, secrets: list[str]) -> None:
        try:
            event_type = json.loads(body).get("type", "?")
        except (ValueError, AttributeError):
            event_type = "(not JSON)"
        verdict = "signature not checked (no secret)"
        for secret in secrets:
            try:
                Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                verdict = "signature does NOT verify"
            else:
                verdict = "signature verifies"
                break
        lower = {k.lower(): v for k, v in headers.items()}
        self.stdout.write(f"{lower.get('webhook-id', '(no webhook-id)')} {event_type}: {verdict}")
        self.stdout.flush()
