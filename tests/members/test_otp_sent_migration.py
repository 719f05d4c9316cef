"""An existing database migrates in place when one-time codes start recording whether they were
sent for real: every code is kept, and each is marked by its app's mode, so that the ceiling
across apps counts a live-mode app's codes alone from the first request after the migration."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from members.models import OtpChallenge
from members.otp import destination_digest

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE_SENT = [("members", "0006_indexes_lead_with_the_app")]
OTP = "/api/v1/cashback/auth/otp"
EMAIL = "carol@example.com"


def migrate_to_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture
def before_sent():
    """The database as it was before codes recorded whether they were sent; its historical
    models. Afterwards it is at the latest migrations again, whatever the test does."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE_SENT)
    try:
        yield executor.loader.project_state(BEFORE_SENT).apps
    finally:
        migrate_to_latest()


def fill(apps) -> dict[str, str]:
    """Codes to one address from a live-mode and a test-mode app, as the release before wrote
    them; returns each code's app mode by challenge id."""
    App = apps.get_model("apps_auth", "App")
    OldMember = apps.get_model("members", "Member")
    OldChallenge = apps.get_model("members", "OtpChallenge")
    digest = destination_digest("email", EMAIL)
    now = timezone.now()
    modes = {}
    for mode in ("live", "test"):
        app = App.objects.create(app_id=f"app_{mode}_old", name=mode, mode=mode, scopes=[])
        member = OldMember.objects.create(app=app, email=f"carol+{mode}@example.com")
        for n in range(2):
            challenge = OldChallenge.objects.create(
                app=app,
                member=member,
                challenge_id=f"otp_{mode}_{n}",
                channel="email",
                destination_masked="c***l@example.com",
                destination_digest=digest,
                code_hash="c" * 64,
                expires_at=now + timedelta(minutes=5),
            )
            modes[challenge.challenge_id] = mode
    return modes


def test_existing_codes_are_marked_sent_by_their_app_s_mode_with_nothing_lost(before_sent):
    modes = fill(before_sent)
    OldChallenge = before_sent.get_model("members", "OtpChallenge")
    kept = {c["challenge_id"]: c for c in OldChallenge.objects.values()}

    migrate_to_latest()

    rows = {c["challenge_id"]: c for c in OtpChallenge.objects.values()}
    assert {key: row["sent"] for key, row in rows.items()} == {
        key: mode == "live" for key, mode in modes.items()
    }
    assert {key: {k: v for k, v in row.items() if k != "sent"} for key, row in rows.items()} == kept


def test_after_the_migration_the_ceiling_counts_only_live_apps_codes(
    before_sent, make_merchant, settings, mailoutbox
):
    fill(before_sent)
    migrate_to_latest()
    settings.CASHBACK_OTP_DESTINATION_CEILING = 3  # two live codes of four are counted
    live = make_merchant(mode="live")
    live.app.members.create(email=EMAIL)
    assert live.client.post(f"{OTP}/request", {"email": EMAIL}).status_code == 200
    assert live.client.post(f"{OTP}/request", {"email": EMAIL}).status_code == 429
    assert len(mailoutbox) == 1
