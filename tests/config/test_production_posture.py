import json
import logging
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tests.factories import CardFactory, MemberFactory
from tests.helpers import code_in, give_balance

ROOT = Path(__file__).resolve().parents[2]
STRONG_KEY = "k8Jd2-production-secret-key-that-is-long-and-random-0123456789"


# What the test run itself sets; a command here starts from the production settings without it.
CLEARED = {
    "SECRET_KEY",
    "DEBUG",
    "DATABASE_URL",
    "DJANGO_SETTINGS_MODULE",
    "EMAIL_BACKEND",
    "CASHBACK_SMS_BACKEND",
    "CASHBACK_ALLOW_CONSOLE_BACKENDS",
}
# Backends that deliver, as a production configuration names them.
DELIVERING = {
    "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
    "CASHBACK_SMS_BACKEND": "members.sms.FileSmsBackend",
}
CONSOLE_EMAIL = "django.core.mail.backends.console.EmailBackend"
CONSOLE_SMS = "members.sms.ConsoleSmsBackend"


def django_command(*args, **env):
    return django_process("manage.py", *args, **env)


def django_process(*args, **env):
    base = {k: v for k, v in os.environ.items() if k not in CLEARED}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    "secret",
    [None, "", "short", "insecure-local-development-key-do-not-use-in-production"],
)
def test_the_service_refuses_to_start_without_a_real_secret_key(secret):
    env = {"DEBUG": "false"}
    if secret is not None:
        env["SECRET_KEY"] = secret
    run = django_command("check", **env)
    assert run.returncode != 0
    assert "Set SECRET_KEY to a random value of at least 32 characters" in run.stderr


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CASHBACK_ADJUSTMENT_MAX_AMOUNT", "ten thousand"),
        ("CASHBACK_ADJUSTMENT_MAX_AMOUNT", "-1"),
        ("CASHBACK_ADJUSTMENT_APPROVAL_THRESHOLD", "NaN"),
    ],
)
def test_the_service_refuses_to_start_with_an_adjustment_amount_that_is_not_one(name, value):
    run = django_command("check", DEBUG="false", SECRET_KEY=STRONG_KEY, **{name: value})
    assert run.returncode != 0
    assert f"{name} must be an amount of 0 or more." in run.stderr


@pytest.mark.parametrize("value", ["a day", "1.5", "-1"])
def test_the_service_refuses_to_start_with_an_approval_window_that_is_not_one(value):
    run = django_command(
        "check",
        DEBUG="false",
        SECRET_KEY=STRONG_KEY,
        CASHBACK_ADJUSTMENT_APPROVAL_WINDOW_HOURS=value,
        **DELIVERING,
    )
    assert run.returncode != 0
    assert "CASHBACK_ADJUSTMENT_APPROVAL_WINDOW_HOURS must be a whole number" in run.stderr


def test_check_deploy_is_clean_for_the_documented_production_configuration():
    run = django_command(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="api.example.com",
        **DELIVERING,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "System check identified no issues" in run.stdout


def test_check_deploy_does_not_take_file_backends_for_console_ones():
    """Django's file email backend subclasses the console one but writes to files: the start-up
    refusal and the deploy check know a console backend by the same names."""
    run = django_command(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="api.example.com",
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        CASHBACK_SMS_BACKEND="members.sms.FileSmsBackend",
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "System check identified no issues" in run.stdout


def django_setup(**env):
    """Starts Django (as gunicorn and every command do) with the production settings."""
    return django_process("-c", "import django; django.setup()", **env)


@pytest.mark.parametrize(
    ("backends", "named"),
    [
        ({}, ["EMAIL_BACKEND", "CASHBACK_SMS_BACKEND"]),  # the defaults
        ({**DELIVERING, "EMAIL_BACKEND": CONSOLE_EMAIL}, ["EMAIL_BACKEND"]),
        ({**DELIVERING, "CASHBACK_SMS_BACKEND": CONSOLE_SMS}, ["CASHBACK_SMS_BACKEND"]),
    ],
)
def test_the_service_refuses_to_start_with_a_console_backend_when_debug_is_off(backends, named):
    """A console backend writes every one-time code to the server's output, i.e. its log."""
    for run in (
        django_setup(DEBUG="false", SECRET_KEY=STRONG_KEY, **backends),
        django_command("check", DEBUG="false", SECRET_KEY=STRONG_KEY, **backends),
    ):
        assert run.returncode != 0
        assert "ImproperlyConfigured" in run.stderr
        refusal = run.stderr.strip().splitlines()[-1]
        assert "CASHBACK_ALLOW_CONSOLE_BACKENDS" in refusal
        for setting in ("EMAIL_BACKEND", "CASHBACK_SMS_BACKEND"):
            assert (setting in refusal) == (setting in named), refusal


def test_delivering_backends_or_debug_start(tmp_path):
    assert django_setup(DEBUG="false", SECRET_KEY=STRONG_KEY, **DELIVERING).returncode == 0
    debug = django_setup(DEBUG="true")  # a developer's console backends
    assert debug.returncode == 0, debug.stderr


def test_an_explicit_allowance_starts_with_console_backends_and_check_deploy_names_them():
    allowed = {
        "DEBUG": "false",
        "SECRET_KEY": STRONG_KEY,
        "CASHBACK_ALLOW_CONSOLE_BACKENDS": "true",
    }
    run = django_setup(**allowed)
    assert run.returncode == 0, run.stderr
    deploy = django_command(
        "check", "--deploy", "--fail-level", "WARNING", ALLOWED_HOSTS="api.example.com", **allowed
    )
    assert deploy.returncode != 0
    warnings = [line for line in deploy.stderr.splitlines() if "members.W001" in line]
    assert len(warnings) == 2, deploy.stderr
    assert "EMAIL_BACKEND" in warnings[0] + warnings[1]
    assert "CASHBACK_SMS_BACKEND" in warnings[0] + warnings[1]
    only_sms = django_command(
        "check",
        "--deploy",
        ALLOWED_HOSTS="api.example.com",
        **{**allowed, **DELIVERING, "CASHBACK_SMS_BACKEND": CONSOLE_SMS},
    )
    [warning] = [line for line in only_sms.stderr.splitlines() if "members.W001" in line]
    assert "CASHBACK_SMS_BACKEND" in warning
    assert "EMAIL_BACKEND" not in warning.replace("CASHBACK_SMS_BACKEND", "")


def test_no_secret_appears_in_a_log_line(make_merchant, caplog, mailoutbox):
    """Keys, tokens, PINs and codes never reach the logs, even on failures (a live app, whose
    codes are sent)."""
    from members.tokens import member_token_issue

    merchant = make_merchant(mode="live")
    api = merchant.client
    card = CardFactory.create(app=merchant.app, allows_pin_redemption=True)
    member = MemberFactory.create(app=merchant.app)
    caplog.set_level(logging.DEBUG)
    give_balance(app=merchant.app, card=card, member=member, purchase="100")
    token = member_token_issue(app=merchant.app, member_id=member.pk).token
    headers = {"X-Member-Token": token}
    api.post("/api/v1/cashback/members/pin", {"pin": "8642"}, headers=headers)
    api.post(
        "/api/v1/cashback/cashback/redeem",
        {"card_id": card.pk, "amount": 1, "pin": "1357"},
        headers=headers,
    )
    challenge = api.post("/api/v1/cashback/auth/otp/request", {"member_id": member.pk}).json()
    code = code_in(mailoutbox[0].body)
    api.post(
        "/api/v1/cashback/auth/otp/verify",
        {"challenge_id": challenge["data"]["challenge_id"], "code": code},
    )
    api.get("/api/v1/cashback/cards", headers={"X-Api-Key": merchant.api_key + "x"})
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records  # the failures above were logged
    for secret in (merchant.api_key, token, "8642", "1357", code):
        assert secret not in logged


def test_a_key_or_token_is_shown_only_by_the_response_that_creates_it(
    api, merchant, card, member, member_token
):
    give_balance(app=merchant.app, card=card, member=member, purchase="100")
    responses = [
        api.get("/api/v1/cashback/cards"),
        api.get("/api/v1/cashback/cashback/balance", {"card_id": card.pk, "member_id": member.pk}),
        api.post(
            "/api/v1/cashback/cashback/redeem",
            {"card_id": card.pk, "amount": 1},
            headers={"X-Member-Token": member_token},
        ),
        api.post(
            "/api/v1/cashback/members/pin",
            {"pin": "9753"},
            headers={"X-Member-Token": member_token},
        ),
    ]
    for response in responses:
        body = response.content.decode()
        for secret in (merchant.api_key, member_token):
            assert secret not in body
    # The PIN can only be echoed by the answer to the request that sets it. Its two known
    # fields are checked exactly (a timestamp's microseconds or an id may hold any four
    # digits); nothing else in the answer may hold the PIN.
    answer = responses[-1].json()
    assert answer["data"].pop("member_id") == member.pk
    datetime.fromisoformat(answer["data"].pop("changed_at"))
    assert answer["data"] == {"pin_set": True}
    assert "9753" not in json.dumps(answer)
