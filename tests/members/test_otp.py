from datetime import timedelta

import pytest
from django.utils import timezone

from members.models import Member, OtpChallenge
from tests.factories import MemberFactory
from tests.helpers import IsoTimestamp, code_in, error


@pytest.fixture
def make_merchant(make_merchant):
    """Live apps: codes are sent to them (a test-mode app gets its code in the answer)."""
    return lambda **fields: make_merchant(**{"mode": "live", **fields})


OTP = "/api/v1/cashback/auth/otp"


@pytest.fixture
def phone_member(merchant):
    return Member.objects.create(app=merchant.app, phone="+21620123456", email=None)


def request_code(api, **body):
    return api.post(f"{OTP}/request", body)


def test_request_sends_a_code_by_email_and_masks_the_address(api, member, mailoutbox):
    member.email = "amira@example.com"
    member.save()
    response = request_code(api, member_id=member.pk)
    assert response.status_code == 200
    challenge = OtpChallenge.objects.get()
    assert response.json() == {
        "success": True,
        "data": {
            "challenge_id": challenge.challenge_id,
            "channel": "email",
            "destination": "a***a@example.com",
            "expires_at": IsoTimestamp(),
        },
    }
    [mail] = mailoutbox
    assert mail.to == ["amira@example.com"]
    code = code_in(mail.body)
    assert code not in response.content.decode()
    assert code not in challenge.code_hash
    assert len(challenge.code_hash) == 64
    lifetime = challenge.expires_at - challenge.created_at
    assert abs(lifetime - timedelta(minutes=5)) < timedelta(seconds=1)


def test_request_by_sms_goes_through_the_file_backend(api, phone_member, settings, tmp_path):
    settings.CASHBACK_SMS_BACKEND = "members.sms.FileSmsBackend"
    settings.CASHBACK_SMS_FILE_PATH = str(tmp_path)
    response = request_code(api, phone="20 123 456", channel="sms")
    assert response.json()["data"]["destination"] == "+216******56"
    line = (tmp_path / "messages.log").read_text()
    assert "\t+21620123456\t" in line
    assert code_in(line.split("\t")[2])


def test_request_on_a_channel_the_member_lacks_is_400(api, member):
    response = request_code(api, member_id=member.pk, channel="sms")
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"channel": ["The member has no sms address."]}


def test_request_for_an_unknown_member_is_404_and_creates_nobody(api):
    response = request_code(api, email="nobody@example.com")
    assert response.status_code == 404
    assert Member.objects.count() == 0


def test_a_fourth_request_in_ten_minutes_is_throttled(api, member):
    for _ in range(3):
        assert request_code(api, member_id=member.pk).status_code == 200
    response = request_code(api, member_id=member.pk)
    assert response.status_code == 429
    assert response.json() == error("throttled")
    assert 500 < int(response["Retry-After"]) <= 601
    OtpChallenge.objects.update(created_at=timezone.now() - timedelta(minutes=11))
    assert request_code(api, member_id=member.pk).status_code == 200


def verify(api, challenge_id, code):
    return api.post(f"{OTP}/verify", {"challenge_id": challenge_id, "code": code})


def test_a_right_code_yields_a_member_token_that_redeems(api, member, mailoutbox):
    challenge_id = request_code(api, member_id=member.pk).json()["data"]["challenge_id"]
    response = verify(api, challenge_id, code_in(mailoutbox[0].body))
    assert response.status_code == 200
    data = response.json()["data"]
    assert data == {
        "member_token": data["member_token"],
        "token_type": "Bearer",
        "expires_at": IsoTimestamp(),
        "member_id": member.pk,
    }
    pin = api.post(
        "/api/v1/cashback/members/pin",
        {"pin": "2468"},
        headers={"X-Member-Token": data["member_token"]},
    )
    assert pin.status_code == 200


def test_a_code_works_once(api, member, mailoutbox):
    challenge_id = request_code(api, member_id=member.pk).json()["data"]["challenge_id"]
    code = code_in(mailoutbox[0].body)
    assert verify(api, challenge_id, code).status_code == 200
    again = verify(api, challenge_id, code)
    assert again.status_code == 400
    assert again.json() == error("invalid_otp", "This code was already used; request a new one.")


def test_five_wrong_codes_kill_the_challenge_even_for_the_right_code(api, member, mailoutbox):
    challenge_id = request_code(api, member_id=member.pk).json()["data"]["challenge_id"]
    code = code_in(mailoutbox[0].body)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for attempts_left in (4, 3, 2, 1, 0):
        response = verify(api, challenge_id, wrong)
        assert response.status_code == 400
        assert response.json() == error("invalid_otp", details={"attempts_left": attempts_left})
    response = verify(api, challenge_id, code)
    assert response.status_code == 429
    assert response.json() == error("too_many_attempts")
    assert 0 < int(response["Retry-After"]) <= 301


def test_an_expired_code_is_refused(api, member, mailoutbox):
    challenge_id = request_code(api, member_id=member.pk).json()["data"]["challenge_id"]
    OtpChallenge.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    response = verify(api, challenge_id, code_in(mailoutbox[0].body))
    assert response.status_code == 400
    assert response.json() == error("invalid_otp", "This code has expired; request a new one.")


def test_another_apps_challenge_is_404(api, other_merchant, mailoutbox):
    stranger = MemberFactory.create(app=other_merchant.app)
    other = other_merchant.client.post(f"{OTP}/request", {"member_id": stranger.pk})
    challenge_id = other.json()["data"]["challenge_id"]
    response = verify(api, challenge_id, code_in(mailoutbox[0].body))
    assert response.status_code == 404


@pytest.mark.parametrize("code", [123456, "12345", "1234567", "abcdef", None])
def test_a_malformed_code_is_400(api, member, code):
    challenge_id = request_code(api, member_id=member.pk).json()["data"]["challenge_id"]
    response = verify(api, challenge_id, code)
    assert response.status_code == 400
    assert list(response.json()["error"]["details"]) == ["code"]
    assert OtpChallenge.objects.get().failed_attempts == 0


def test_otp_needs_the_write_scope(make_merchant, member):
    reader = make_merchant(scopes=["cashback_read"])
    response = reader.client.post(f"{OTP}/request", {"member_id": member.pk})
    assert response.status_code == 403


def test_a_test_mode_app_gets_the_code_in_the_answer_and_nothing_is_sent(
    make_merchant, member, mailoutbox, settings, tmp_path
):
    settings.CASHBACK_SMS_BACKEND = "members.sms.FileSmsBackend"
    settings.CASHBACK_SMS_FILE_PATH = str(tmp_path)
    sandbox = make_merchant(mode="test")
    member = MemberFactory.create(app=sandbox.app, email="amira@example.com", phone="+21620123456")
    for channel in ("email", "sms"):
        response = sandbox.client.post(
            f"{OTP}/request", {"member_id": member.pk, "channel": channel}
        )
        assert response.status_code == 200
        code = response.json()["data"]["test_code"]
        assert len(code) == 6
        assert code.isdigit()
        verified = sandbox.client.post(
            f"{OTP}/verify",
            {"challenge_id": response.json()["data"]["challenge_id"], "code": code},
        )
        assert verified.status_code == 200
    assert mailoutbox == []
    assert not (tmp_path / "messages.log").exists()


def test_a_live_app_never_gets_the_code_in_the_answer(api, member, mailoutbox):
    response = request_code(api, member_id=member.pk)
    assert response.status_code == 200
    assert "test_code" not in response.json()["data"]
    assert code_in(mailoutbox[0].body) not in response.content.decode()
