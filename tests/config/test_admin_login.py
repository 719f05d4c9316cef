"""The admin login locks a username out from an address after repeated failures (django-axes):
the right password then gets a lockout page, not a session, until the cool-off passes or a
superuser unlocks it. Usernames that name no staff account count together per address, so
guessing new ones gains nothing; once they lock an address out, every username from it is
locked out alike, so the lockout tells nobody which usernames are staff; a locked-out attempt
never runs the password hasher. The lockout page is the same whatever the username."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db.models import F
from django.test import Client

ROOT = Path(__file__).resolve().parents[2]
LOGIN = "/admin/login/"
PASSWORD = "a-strong-passw0rd"
ATTACKER = "81.2.69.160"


@pytest.fixture
def ops(django_user_model):
    return django_user_model.objects.create_superuser("ops", "ops@example.com", PASSWORD)


def log_in(username: str, password: str, *, ip: str = ATTACKER, **meta):
    client = Client()
    response = client.post(
        LOGIN,
        {"username": username, "password": password, "next": "/admin/"},
        REMOTE_ADDR=ip,
        **meta,
    )
    return client, response


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session and client.get("/admin/").status_code == 200


def fail(username: str, times: int, *, ip: str = ATTACKER, **meta) -> list:
    return [log_in(username, "wrong", ip=ip, **meta)[1] for _ in range(times)]


def test_the_right_password_after_25_wrong_ones_does_not_log_in(ops):
    responses = fail("ops", 25)
    # The login form with its error, then the lockout from the fifth failure on.
    assert [r.status_code for r in responses[:6]] == [200] * 4 + [429] * 2
    client, response = log_in("ops", PASSWORD)
    assert response.status_code == 429
    assert not logged_in(client)


def test_the_lockout_answer_is_a_clear_page(ops):
    fail("ops", 5)
    _, response = log_in("ops", PASSWORD)
    assert response.status_code == 429
    assert response["Content-Type"].startswith("text/html")
    text = response.content.decode()
    assert "Too many failed login attempts" in text
    assert "15 minutes" in text
    assert PASSWORD not in text


def test_a_lockout_looks_the_same_for_an_unknown_username(ops):
    known = [r.status_code for r in fail("ops", 6, ip="81.2.69.161")]
    unknown = [r.status_code for r in fail("ghost", 6, ip="81.2.69.162")]
    assert known == unknown == [200] * 4 + [429] * 2
    _, known_page = log_in("ops", PASSWORD, ip="81.2.69.161")
    _, unknown_page = log_in("ghost", PASSWORD, ip="81.2.69.162")
    assert (known_page.status_code, known_page.content) == (
        unknown_page.status_code,
        unknown_page.content,
    )


def test_another_user_from_the_same_address_is_not_locked(ops, django_user_model):
    django_user_model.objects.create_superuser("finance", "f@example.com", PASSWORD)
    fail("ops", 25)
    client, response = log_in("finance", PASSWORD)
    assert response.status_code == 302
    assert logged_in(client)


def test_the_same_user_from_another_address_is_not_locked(ops):
    fail("ops", 25)
    client, response = log_in("ops", PASSWORD, ip="81.2.69.200")
    assert response.status_code == 302
    assert logged_in(client)


def test_a_forwarded_for_header_does_not_escape_the_lockout_without_a_proxy_count(ops):
    for i in range(25):
        log_in("ops", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{i}")
    client, response = log_in("ops", PASSWORD, HTTP_X_FORWARDED_FOR="203.0.113.250")
    assert response.status_code == 429
    assert not logged_in(client)


def test_after_the_cool_off_the_right_password_logs_in(ops):
    from axes.models import AccessAttempt

    fail("ops", 25)
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=14))
    # Still locked; an attempt while locked starts the cool-off again.
    assert log_in("ops", PASSWORD)[1].status_code == 429
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=14))
    assert log_in("ops", PASSWORD)[1].status_code == 429
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))
    client, response = log_in("ops", PASSWORD)
    assert response.status_code == 302
    assert logged_in(client)


def test_a_superuser_unlocks_a_user_in_the_admin(ops, django_user_model):
    from axes.models import AccessAttempt

    fail("ops", 25)
    root = Client()
    root.force_login(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))
    listing = root.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert b"ops" in listing.content
    ids = [str(pk) for pk in AccessAttempt.objects.values_list("pk", flat=True)]
    response = root.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    assert response.status_code == 302
    assert not AccessAttempt.objects.exists()
    client, response = log_in("ops", PASSWORD)
    assert response.status_code == 302
    assert logged_in(client)


def test_the_reset_command_unlocks_a_user(ops):
    fail("ops", 25)
    assert log_in("ops", PASSWORD)[1].status_code == 429
    call_command("axes_reset_username", "ops")
    client, response = log_in("ops", PASSWORD)
    assert response.status_code == 302
    assert logged_in(client)


def test_unknown_usernames_from_one_address_count_together(ops):
    responses = [log_in(f"ghost{i}", "wrong")[1] for i in range(6)]
    assert [r.status_code for r in responses] == [200] * 4 + [429] * 2
    assert log_in("nobody", PASSWORD)[1].status_code == 429
    # Not another address, nor a staff account from another address: its count is its own.
    assert log_in("ghost9", "wrong", ip="81.2.69.201")[1].status_code == 200
    client, response = log_in("ops", PASSWORD, ip="81.2.69.201")
    assert response.status_code == 302
    assert logged_in(client)


def test_an_address_locked_for_unknown_usernames_tells_nobody_which_are_staff(ops):
    for i in range(5):
        log_in(f"ghost{i}", "wrong")
    # From that address a staff account, with the right password or not, gets what an unknown
    # username gets: the same page, and no session.
    answers = [log_in(name, password)[1] for name, password in [("ops", PASSWORD), ("ops", "x")]]
    unknown = log_in("ghost9", "wrong")[1]
    assert {r.status_code for r in answers} == {unknown.status_code} == {429}
    assert {r.content for r in answers} == {unknown.content}
    assert not logged_in(log_in("ops", PASSWORD)[0])


def test_a_username_that_cannot_sign_in_to_the_admin_counts_with_the_unknown_ones(
    ops, django_user_model
):
    django_user_model.objects.create_user("shopper", password=PASSWORD)
    django_user_model.objects.create_user("gone", password=PASSWORD, is_staff=True, is_active=False)
    names = ["ghost", "shopper", "gone", "OPS", "shopper", "ghost"]
    statuses = [log_in(name, "wrong")[1].status_code for name in names]
    assert statuses == [200] * 4 + [429] * 2


def test_a_locked_out_unknown_username_never_runs_the_password_hasher(ops, monkeypatch):
    from django.contrib.auth.hashers import MD5PasswordHasher

    for i in range(5):
        log_in(f"ghost{i}", "wrong")
    hashed: list[str] = []

    def counted(name: str):
        real = getattr(MD5PasswordHasher, name)

        def run(self, *args):
            hashed.append(name)
            return real(self, *args)

        return run

    for name in ("encode", "verify"):
        monkeypatch.setattr(MD5PasswordHasher, name, counted(name))
    assert [log_in(f"spray{i}", PASSWORD)[1].status_code for i in range(10)] == [429] * 10
    assert log_in("ops", PASSWORD)[1].status_code == 429  # a staff username too, from there
    assert hashed == []
    assert log_in("ops", PASSWORD, ip="81.2.69.201")[1].status_code == 302
    assert "verify" in hashed  # the staff account's own login checks its password, as ever


def test_resetting_an_address_unlocks_its_unknown_usernames(ops):
    for i in range(5):
        log_in(f"ghost{i}", "wrong")
    assert log_in("ghost9", "wrong")[1].status_code == 429
    call_command("axes_reset_ip", ATTACKER)
    assert log_in("ghost9", "wrong")[1].status_code == 200


CLIENT_ADDRESS = """
from axes.helpers import get_client_ip_address
from django.test import RequestFactory
request = RequestFactory().post(
    "/admin/login/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR={forwarded!r}
)
print(get_client_ip_address(request))
"""


@pytest.mark.parametrize(
    ("proxies", "forwarded", "address"),
    [
        # No proxy count: X-Forwarded-For is anyone's to write, so the peer's address counts.
        (None, "6.6.6.6, 81.2.69.160", "10.0.0.2"),
        ("0", "6.6.6.6, 81.2.69.160", "10.0.0.2"),
        # One proxy: the address it appended, whatever the client put before it.
        ("1", "81.2.69.160", "81.2.69.160"),
        ("1", "6.6.6.6, 81.2.69.160", "81.2.69.160"),
        # Two: the address the outer one appended.
        ("2", "6.6.6.6, 81.2.69.160, 172.16.0.9", "81.2.69.160"),
    ],
)
def test_the_client_address_is_read_through_the_configured_proxies(proxies, forwarded, address):
    env = {k: v for k, v in os.environ.items() if k != "ADMIN_LOGIN_PROXY_COUNT"}
    if proxies is not None:
        env["ADMIN_LOGIN_PROXY_COUNT"] = proxies
    run = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", CLIENT_ADDRESS.format(forwarded=forwarded)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == address
