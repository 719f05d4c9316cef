import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from apps_auth.models import App
from cards.models import Card
from members.models import Member
from members.tokens import member_token_member_id
from tests.factories import AppFactory, MemberFactory
from webhooks.models import WebhookDelivery, WebhookEndpoint


def run(*args) -> dict:
    out = StringIO()
    call_command(*args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_create_api_app_prints_a_working_key(db, client):
    result = run(
        "create_api_app", "Shop", "--scopes", "cashback_read,card_read", "--rate-limit", "120"
    )
    assert set(result) >= {"app_id", "api_key", "scopes", "mode"}
    assert result["scopes"] == ["card_read", "cashback_read"]
    assert result["mode"] == "test"
    assert App.objects.get(app_id=result["app_id"]).rate_limit_per_minute == 120
    response = client.get(
        "/api/v1/cashback/cards",
        headers={"X-App-Id": result["app_id"], "X-Api-Key": result["api_key"]},
    )
    assert response.status_code == 200


def test_create_api_app_in_live_mode(db):
    assert run("create_api_app", "Shop", "--scopes", "card_read", "--mode", "live")[
        "api_key"
    ].startswith("live_")


def test_create_api_app_refuses_unknown_scopes(db):
    with pytest.raises(CommandError, match="Unknown or missing scopes"):
        call_command("create_api_app", "Shop", "--scopes", "everything")
    assert App.objects.count() == 0


def test_create_and_revoke_api_keys(db, client, django_capture_on_commit_callbacks):
    app = run("create_api_app", "Shop", "--scopes", "card_read")
    second = run("create_api_key", "--app", app["app_id"])
    assert second["app_id"] == app["app_id"]
    assert second["api_key"] != app["api_key"]

    def status(key):
        headers = {"X-App-Id": app["app_id"], "X-Api-Key": key}
        return client.get("/api/v1/cashback/cards", headers=headers).status_code

    assert status(app["api_key"]) == status(second["api_key"]) == 200
    with django_capture_on_commit_callbacks(execute=True):
        revoked = run("revoke_api_key", "--app", app["app_id"], "--key", app["api_key"])
    assert revoked == {"app_id": app["app_id"], "revoked": True}
    assert status(app["api_key"]) == 401
    assert status(second["api_key"]) == 200


def test_revoke_of_an_unknown_key_fails(db):
    app = AppFactory.create()
    with pytest.raises(CommandError, match="no such key"):
        call_command("revoke_api_key", "--app", app.app_id, "--key", "test_nothing-like-this")


def test_commands_refuse_an_unknown_app(db):
    with pytest.raises(CommandError, match="No app with id"):
        call_command("create_api_key", "--app", "app_missing")


def test_create_card_prints_the_list_item_shape(db):
    app = AppFactory.create()
    result = run(
        "create_card",
        "--app",
        app.app_id,
        "--name",
        "Gold",
        "--percentage",
        "5",
        "--identifier",
        "CASH-001",
        "--min-amount",
        "10",
        "--allow-pin-redemption",
    )
    card = Card.objects.get()
    assert result == {
        "id": card.pk,
        "unique_identifier": "CASH-001",
        "name": "Gold",
        "description": "",
        "reward_system": "cashback",
        "cashback_config": {
            "cashback_percentage": 5,
            "cashback_min_amount": 10,
            "cashback_max_amount": None,
            "allows_pin_redemption": True,
            "cashback_holding_days": 0,
            "cashback_expiry_days": None,
            "cashback_expiry_policy": "rolling",
            "cashback_expiry_date": None,
            "cashback_inactivity_days": None,
            "tier_period_days": 365,
            "tier_retention_days": 365,
            "time_zone": "Africa/Tunis",
        },
        "currency": "TND",
        "is_active": True,
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--percentage", "0"], "cashback_percentage"),
        (["--percentage", "101"], "cashback_percentage"),
        (["--percentage", "5", "--currency", "ZZZ"], "currency"),
        (
            ["--percentage", "5", "--currency", "EUR", "--min-amount", "1.001"],
            "cashback_min_amount",
        ),
        (["--percentage", "5", "--max-amount", "0"], "cashback_max_amount"),
    ],
)
def test_create_card_refuses_invalid_values(db, args, message):
    app = AppFactory.create()
    with pytest.raises(CommandError, match=message):
        call_command("create_card", "--app", app.app_id, "--name", "X", *args)
    assert Card.objects.count() == 0


def test_create_card_inactive_in_jpy(db):
    app = AppFactory.create()
    result = run(
        "create_card", "--app", app.app_id, "--name", "Yen", "--percentage", "1.5",
        "--currency", "JPY", "--max-amount", "500", "--inactive",
    )  # fmt: skip
    assert result["currency"] == "JPY"
    assert result["is_active"] is False
    assert result["cashback_config"]["cashback_max_amount"] == 500


def test_create_member_token_makes_a_token_for_that_app(db):
    member = MemberFactory.create()
    result = run(
        "create_member_token", "--app", member.app.app_id, "--member", str(member.pk), "--ttl", "60"
    )
    assert set(result) == {"member_token", "expires_at"}
    assert member_token_member_id(app=member.app, token=result["member_token"]) == member.pk


def test_create_member_token_refuses_another_apps_member(db):
    member = MemberFactory.create()
    with pytest.raises(CommandError, match="Member not found"):
        call_command(
            "create_member_token", "--app", AppFactory.create().app_id, "--member", str(member.pk)
        )


@pytest.fixture
def debug_on(settings):
    settings.DEBUG = True  # as `make run` sets it


def test_seed_demo_refuses_with_debug_off_and_creates_nothing(db, settings, django_user_model):
    settings.DEBUG = False
    with pytest.raises(CommandError, match=r"DEBUG is off.*--force"):
        call_command("seed_demo", stdout=StringIO())
    assert App.objects.count() == Card.objects.count() == Member.objects.count() == 0
    assert not django_user_model.objects.exists()


def test_seed_demo_with_force_seeds_with_debug_off(db, settings, django_user_model):
    settings.DEBUG = False
    result = run("seed_demo", "--force")
    assert App.objects.get().app_id == result["app_id"]
    assert django_user_model.objects.get(username=result["admin_username"]).is_superuser


def test_seed_demo_is_idempotent_and_prints_working_credentials(db, debug_on, client):
    first = run("seed_demo")
    second = run("seed_demo")
    assert (first["app_id"], first["api_key"], first["card_id"], first["member_id"]) == (
        second["app_id"],
        second["api_key"],
        second["card_id"],
        second["member_id"],
    )
    assert App.objects.count() == 1
    assert Card.objects.count() == 1
    assert Member.objects.count() == 1
    [endpoint] = WebhookEndpoint.objects.all()
    assert endpoint.url == first["webhook_url"] == "http://127.0.0.1:8001/hooks/cashback"
    assert endpoint.secret == first["webhook_secret"] == second["webhook_secret"]
    headers = {"X-App-Id": first["app_id"], "X-Api-Key": first["api_key"]}
    earn = client.post(
        "/api/v1/cashback/cashback/earn",
        {"card_id": first["card_id"], "member_id": first["member_id"], "purchase_amount": 50},
        content_type="application/json",
        headers=headers,
    )
    assert earn.status_code == 200
    assert WebhookDelivery.objects.get().endpoint == endpoint
    redeem = client.post(
        "/api/v1/cashback/cashback/redeem",
        {"card_id": first["card_id"], "amount": 1, "pin": first["member_pin"]},
        content_type="application/json",
        headers={**headers, "X-Member-Token": second["member_token"]},
    )
    assert redeem.status_code == 200, redeem.json()


def test_seed_demo_prints_a_curl_line(db, debug_on):
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "curl -s -H 'X-App-Id: app_" in out.getvalue()


def test_create_api_app_takes_an_hourly_quota_of_one_time_codes(db):
    result = run("create_api_app", "Shop", "--scopes", "card_read", "--otp-hourly-quota", "40")
    assert result["otp_hourly_quota"] == 40
    assert App.objects.get(app_id=result["app_id"]).otp_hourly_quota == 40
    default = run("create_api_app", "Shop", "--scopes", "card_read")
    assert default["otp_hourly_quota"] is None  # CASHBACK_OTP_APP_HOURLY_QUOTA applies


def test_create_api_app_refuses_a_negative_quota_and_creates_nothing(db):
    with pytest.raises(CommandError, match="otp_hourly_quota"):
        call_command("create_api_app", "Shop", "--scopes", "card_read", "--otp-hourly-quota", "-1")
    assert App.objects.count() == 0
