"""One-time codes cost money and reach people: each destination (a phone or an email address)
gets a few codes an hour across every member and app, each app a quota of codes an hour, and
SMS goes to mobile numbers only."""

import hashlib
import hmac
from datetime import timedelta

import phonenumbers
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from phonenumbers import PhoneNumberType
from rest_framework.test import APIClient

from members.models import Member, OtpChallenge
from tests.helpers import concurrently, error


@pytest.fixture
def make_merchant(make_merchant):
    """Live apps: codes are sent to them (a test-mode app gets its code in the answer)."""
    return lambda **fields: make_merchant(**{"mode": "live", **fields})


OTP = "/api/v1/cashback/auth/otp"
MOBILE = "+21620123456"


@pytest.fixture
def sms_sent(settings, tmp_path):
    """The SMS sent, read from the file backend: a list of (to, body)."""
    settings.CASHBACK_SMS_BACKEND = "members.sms.FileSmsBackend"
    settings.CASHBACK_SMS_FILE_PATH = str(tmp_path)

    def read():
        log = tmp_path / "messages.log"
        lines = log.read_text().splitlines() if log.exists() else []
        return [tuple(line.split("\t")[1:]) for line in lines]

    return read


def sms_request(merchant, phone=MOBILE):
    """A code by SMS for the app's member with this phone (created on first use)."""
    Member.objects.get_or_create(app=merchant.app, phone=phone)
    return merchant.client.post(f"{OTP}/request", {"phone": phone, "channel": "sms"})


# Per destination, across members and apps


def test_a_phone_gets_at_most_the_ceiling_across_members_and_apps(
    make_merchant, settings, sms_sent
):
    settings.CASHBACK_OTP_DESTINATION_CEILING = 3
    merchants = [make_merchant() for _ in range(4)]
    for merchant in merchants[:3]:
        assert sms_request(merchant).status_code == 200
    refused = sms_request(merchants[3])
    assert refused.status_code == 429
    assert refused.json() == error("throttled")
    assert 3500 < int(refused["Retry-After"]) <= 3601
    assert len(sms_sent()) == 3
    assert OtpChallenge.objects.count() == 3

    # Another phone is not held back, and the hour passes.
    assert sms_request(merchants[3], phone="+21698123456").status_code == 200
    OtpChallenge.objects.update(created_at=timezone.now() - timedelta(minutes=61))
    assert sms_request(merchants[3]).status_code == 200
    assert len(sms_sent()) == 5


def test_an_email_address_gets_at_most_the_ceiling_across_apps(make_merchant, settings, mailoutbox):
    settings.CASHBACK_OTP_DESTINATION_CEILING = 2
    # A subaddress (name+tag@) reaches the same inbox: it counts as the address itself.
    emails = ["amira@example.com", "Amira@Example.com", "amira+promo@example.com"]
    statuses = []
    for email in emails:
        merchant = make_merchant()
        Member.objects.create(app=merchant.app, email=email.lower())
        statuses.append(merchant.client.post(f"{OTP}/request", {"email": email}).status_code)
    assert statuses == [200, 200, 429]
    assert len(mailoutbox) == 2


def test_one_app_cannot_use_up_an_address_for_the_others(make_merchant, settings, sms_sent):
    settings.CASHBACK_OTP_DESTINATION_LIMIT = 2
    settings.CASHBACK_OTP_DESTINATION_CEILING = 20
    hostile, honest = make_merchant(), make_merchant()
    assert [sms_request(hostile).status_code for _ in range(3)] == [200, 200, 429]
    assert sms_request(honest).status_code == 200
    assert len(sms_sent()) == 3


def test_test_mode_apps_codes_never_count_toward_the_ceiling(make_merchant, settings, mailoutbox):
    settings.CASHBACK_OTP_DESTINATION_LIMIT = 2
    settings.CASHBACK_OTP_DESTINATION_CEILING = 3
    # Test-mode apps, each with a subaddress of one inbox, ask for every code they may have.
    for n in range(3):
        test_app = make_merchant(mode="test")
        email = f"carol+{n}@example.com"
        Member.objects.create(app=test_app.app, email=email)
        statuses = [
            test_app.client.post(f"{OTP}/request", {"email": email}).status_code for _ in range(3)
        ]
        assert statuses == [200, 200, 429]  # each meets its own limit
    assert mailoutbox == []

    live = make_merchant()
    Member.objects.create(app=live.app, email="carol@example.com")
    assert live.client.post(f"{OTP}/request", {"email": "carol@example.com"}).status_code == 200
    assert [mail.to for mail in mailoutbox] == [["carol@example.com"]]


def test_the_ceiling_s_retry_after_tells_nothing_of_when_other_apps_sent_their_codes(
    make_merchant, settings, sms_sent
):
    settings.CASHBACK_OTP_DESTINATION_CEILING = 2
    first, second, third = make_merchant(), make_merchant(), make_merchant()
    assert sms_request(first).status_code == 200
    assert sms_request(second).status_code == 200
    OtpChallenge.objects.update(created_at=timezone.now() - timedelta(minutes=50))
    refused = sms_request(third)
    assert refused.status_code == 429
    assert refused.json() == error("throttled")
    assert refused["Retry-After"] == "3600"  # the whole hour, however soon a code leaves it


def test_the_ceiling_counts_codes_sent_for_real_on_its_index(make_merchant, sms_sent):
    with CaptureQueriesContext(connection) as queries:
        assert sms_request(make_merchant()).status_code == 200
    [ceiling] = [
        query["sql"]
        for query in queries
        if "apps_auth_otpchallenge" in query["sql"]
        and '"destination_digest" =' in query["sql"]
        and '"app_id" =' not in query["sql"]
    ]
    assert '"sent"' in ceiling
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {ceiling}")
        plan = "\n".join(row for (row,) in cursor.fetchall())
    assert "otp_destination_recent" in plan, plan


def test_the_destination_is_recorded_as_a_keyed_digest_never_in_clear(
    make_merchant, settings, sms_sent
):
    first, second = make_merchant(), make_merchant()
    sms_request(first)
    Member.objects.create(app=second.app, phone=MOBILE)
    second.client.post(f"{OTP}/request", {"phone": "20 123 456", "channel": "sms"})
    one, other = OtpChallenge.objects.order_by("pk")
    assert one.destination_digest == other.destination_digest  # one phone, however written
    assert len(one.destination_digest) == 64
    row = OtpChallenge.objects.filter(pk=one.pk).values().get()
    assert not any("20123456" in str(value) for value in row.values())
    unkeyed = hashlib.sha256(f"sms:{MOBILE}".encode()).hexdigest()
    assert one.destination_digest != unkeyed
    key = f"otp-destination:{settings.SECRET_KEY}".encode()
    assert one.destination_digest == hmac.new(key, f"sms:{MOBILE}".encode(), "sha256").hexdigest()


def test_n_concurrent_requests_for_one_phone_from_different_apps_send_at_most_the_ceiling(
    transactional_db, make_merchant, settings, sms_sent
):
    settings.CASHBACK_OTP_DESTINATION_CEILING = 3
    merchants = [make_merchant() for _ in range(8)]
    for merchant in merchants:
        Member.objects.create(app=merchant.app, phone=MOBILE)
    responses = concurrently(
        8,
        lambda i: merchants[i].client.post(f"{OTP}/request", {"phone": MOBILE, "channel": "sms"}),
    )
    assert sorted(r.status_code for r in responses) == [200] * 3 + [429] * 5
    assert len(sms_sent()) == 3
    assert OtpChallenge.objects.count() == 3


# Per app and hour


def test_an_app_gets_its_hourly_quota_of_codes(make_merchant, settings, sms_sent):
    settings.CASHBACK_OTP_APP_HOURLY_QUOTA = 2
    merchant, other = make_merchant(), make_merchant()
    assert sms_request(merchant, "+21620000001").status_code == 200
    assert sms_request(merchant, "+21620000002").status_code == 200
    refused = sms_request(merchant, "+21620000003")
    assert refused.status_code == 429
    assert refused.json() == error("throttled")
    assert 3500 < int(refused["Retry-After"]) <= 3601
    assert sms_request(other, "+21620000003").status_code == 200  # its own quota
    assert [to for to, _ in sms_sent()] == ["+21620000001", "+21620000002", "+21620000003"]


@pytest.mark.parametrize(("setting", "override", "allowed"), [(5, 1, 1), (1, 3, 3), (2, 0, 0)])
def test_an_apps_own_quota_overrides_the_setting(
    make_merchant, settings, sms_sent, setting, override, allowed
):
    settings.CASHBACK_OTP_APP_HOURLY_QUOTA = setting
    merchant = make_merchant(otp_hourly_quota=override)
    statuses = [sms_request(merchant, f"+2162000000{i}").status_code for i in range(4)]
    assert statuses == [200] * allowed + [429] * (4 - allowed)
    assert len(sms_sent()) == allowed


def test_n_concurrent_requests_of_one_app_send_at_most_its_quota(
    transactional_db, make_merchant, settings, sms_sent
):
    settings.CASHBACK_OTP_APP_HOURLY_QUOTA = 3
    merchant = make_merchant()
    phones = [f"+2162000001{i}" for i in range(8)]
    for phone in phones:
        Member.objects.create(app=merchant.app, phone=phone)
    headers = {"X-App-Id": merchant.app.app_id, "X-Api-Key": merchant.api_key}
    clients = [APIClient(headers=headers) for _ in phones]
    responses = concurrently(
        8,
        lambda i: clients[i].post(
            f"{OTP}/request", {"phone": phones[i], "channel": "sms"}, format="json"
        ),
    )
    assert sorted(r.status_code for r in responses) == [200] * 3 + [429] * 5
    assert len(sms_sent()) == 3


# Only mobile numbers get SMS


@pytest.mark.parametrize(
    ("phone", "kind"),
    [
        ("+21688123456", PhoneNumberType.PREMIUM_RATE),
        ("+21680101234", PhoneNumberType.TOLL_FREE),
        ("+21681101234", PhoneNumberType.SHARED_COST),
        ("+21671123456", PhoneNumberType.FIXED_LINE),
        ("+445612345678", PhoneNumberType.VOIP),
        ("+447640123456", PhoneNumberType.PAGER),
        ("+447012345678", PhoneNumberType.PERSONAL_NUMBER),
        ("+445512345678", PhoneNumberType.UAN),
    ],
)
def test_sms_to_a_number_that_is_not_a_mobile_is_refused(merchant, sms_sent, phone, kind):
    assert phonenumbers.number_type(phonenumbers.parse(phone)) == kind  # as the library says
    response = sms_request(merchant, phone)
    assert response.status_code == 400
    body = response.json()
    assert body == error("validation_error", details={"phone": [body["error"]["message"]]})
    assert phone in body["error"]["message"]
    assert sms_sent() == []
    assert OtpChallenge.objects.count() == 0


def test_a_member_with_only_a_premium_rate_number_gets_no_code_by_default(merchant, sms_sent):
    member = Member.objects.create(app=merchant.app, phone="+21688123456")
    response = merchant.client.post(f"{OTP}/request", {"member_id": member.pk})
    assert response.status_code == 400
    assert sms_sent() == []


@pytest.mark.parametrize(
    ("phone", "kind"),
    [
        ("+21620123456", PhoneNumberType.MOBILE),
        ("+21698123456", PhoneNumberType.MOBILE),
        ("+21650123456", PhoneNumberType.MOBILE),
        ("+21630010123", PhoneNumberType.FIXED_LINE_OR_MOBILE),
        ("+12015550123", PhoneNumberType.FIXED_LINE_OR_MOBILE),
    ],
)
def test_sms_to_a_mobile_number_is_sent(merchant, sms_sent, phone, kind):
    assert phonenumbers.number_type(phonenumbers.parse(phone)) == kind
    assert sms_request(merchant, phone).status_code == 200
    assert [to for to, _ in sms_sent()] == [phone]
