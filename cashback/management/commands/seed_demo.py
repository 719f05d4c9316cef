import hashlib
import hmac
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import CommandError

from apps_auth.keys import key_prefix
from apps_auth.models import ApiKey, App, Scope
from apps_auth.services import api_key_create, app_create
from cards.models import Card
from cards.services import card_create
from core.commands import OperationsCommand
from members.models import Member
from members.services import member_pin_set
from members.tokens import member_token_issue
from webhooks.models import WebhookEndpoint
from webhooks.services import webhook_endpoint_create

DEMO_APP = "Demo Merchant"
DEMO_CARD = "CASH-001"
DEMO_EMAIL = "demo@example.com"
DEMO_PIN = "1234"
DEMO_TOKEN_TTL = 24 * 3600
DEMO_ADMIN = ("admin", "cashback-demo")


def _demo_key(app: App) -> str:
    """The demo app's key, derived from SECRET_KEY so that every run prints the same one."""
    digest = hmac.new(settings.SECRET_KEY.encode(), f"seed_demo:{app.app_id}".encode(), "sha256")
    return f"test_{hashlib.sha256(digest.digest()).hexdigest()[:40]}"


class Command(OperationsCommand):
    help = (
        "Creates (or reuses) a demo app, card and member, and prints working credentials. "
        "Refuses with DEBUG off unless --force."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")
        parser.add_argument(
            "--webhook-url",
            default="http://127.0.0.1:8001/hooks/cashback",
            help="Where the demo app's events go (make run starts a receiver there).",
        )
        parser.add_argument(
            "--force", action="store_true", help="Seed even with DEBUG off (never in production)."
        )

    def run(self, *, base_url, webhook_url, force, **options):
        if not settings.DEBUG and not force:
            # The demo superuser's password is printed here and in the README.
            raise CommandError(
                "DEBUG is off: seed_demo would create the superuser "
                f"{DEMO_ADMIN[0]!r} with a published password and a demo app with known "
                "credentials. Run it with DEBUG=true (make run does), or with --force on a "
                "database that is not production."
            )
        app = App.objects.filter(name=DEMO_APP, mode="test").order_by("id").first()
        if app is None:
            app, _ = app_create(name=DEMO_APP, scopes=list(Scope.values))
        raw_key = _demo_key(app)
        if not ApiKey.objects.filter(prefix=key_prefix(raw_key), revoked_at__isnull=True).exists():
            if ApiKey.objects.filter(prefix=key_prefix(raw_key)).exists():
                raw_key = api_key_create(app=app).raw_key  # the demo key was revoked
            else:
                api_key_create(app=app, raw_key=raw_key)

        card = Card.objects.filter(app=app, unique_identifier=DEMO_CARD).first()
        if card is None:
            card = card_create(
                app=app,
                name="Premium Cashback Card",
                unique_identifier=DEMO_CARD,
                description="5% cashback on all purchases",
                cashback_percentage=Decimal(5),
                cashback_min_amount=Decimal(10),
                cashback_max_amount=Decimal(1000),
                allows_pin_redemption=True,
            )
        member, _ = Member.objects.get_or_create(
            app=app, email=DEMO_EMAIL, defaults={"name": "Demo Member"}
        )
        if not member.has_pin:
            member_pin_set(member=member, pin=DEMO_PIN)
        username, password = DEMO_ADMIN
        if not get_user_model().objects.filter(username=username).exists():
            get_user_model().objects.create_superuser(username, "admin@example.com", password)
        endpoint = WebhookEndpoint.objects.filter(
            app=app, url=webhook_url, deleted_at__isnull=True
        ).first() or webhook_endpoint_create(app=app, url=webhook_url)
        token = member_token_issue(app=app, member_id=member.pk, ttl_seconds=DEMO_TOKEN_TTL)
        return {
            "base_url": base_url,
            "app_id": app.app_id,
            "api_key": raw_key,
            "card_id": card.pk,
            "member_id": member.pk,
            "member_email": member.email,
            "member_pin": DEMO_PIN,
            "member_token": token.token,
            "member_token_expires_at": token.expires_at.isoformat(),
            "webhook_url": endpoint.url,
            "webhook_secret": endpoint.secret,
            "admin_username": username,
            "admin_password": password,
        }

    def describe(self, r):
        auth = f"-H 'X-App-Id: {r['app_id']}' -H 'X-Api-Key: {r['api_key']}'"
        api = f"{r['base_url']}/api/v1/cashback"
        return f"""
Demo credentials (test mode)
  X-App-Id:       {r["app_id"]}
  X-Api-Key:      {r["api_key"]}
  card_id:        {r["card_id"]}
  member_id:      {r["member_id"]} ({r["member_email"]}, PIN {r["member_pin"]})
  X-Member-Token: {r["member_token"]}
                  (valid until {r["member_token_expires_at"]})

Try it:
  curl -s {auth} -H 'Content-Type: application/json' \\
    -d '{{"card_id": {r["card_id"]}, "member_id": {r["member_id"]}, "purchase_amount": 50.00}}' \\
    {api}/cashback/earn
  curl -s {auth} '{api}/cashback/balance?card_id={r["card_id"]}&member_id={r["member_id"]}'
  curl -s {auth} -H 'X-Member-Token: {r["member_token"]}' -H 'Content-Type: application/json' \\
    -d '{{"card_id": {r["card_id"]}, "amount": 1.000}}' {api}/cashback/redeem

Webhooks: every event of the demo app is POSTed to {r["webhook_url"]}
  (secret {r["webhook_secret"]}); the receiver make run starts there prints each delivery,
  and the back office lists them: {r["base_url"]}/admin/webhooks/webhookdelivery/

API docs: {api}/docs
Admin:    {r["base_url"]}/admin/ (user {r["admin_username"]}, password {r["admin_password"]})
"""
