"""One-time codes that prove a member's identity and yield a member token.

Codes are 6 digits from `secrets`, stored as a keyed digest, valid 5 minutes, good once, dead
after 5 wrong tries; a member may ask for 3 codes per 10 minutes. Because each code costs a
message to an address the caller chooses, each destination also gets at most
`CASHBACK_OTP_DESTINATION_LIMIT` codes an hour from one app and `CASHBACK_OTP_DESTINATION_CEILING`
sent by all apps together, each app its hourly quota (`App.otp_quota`), and SMS goes to mobile
numbers only. A test-mode app's codes are not sent, so they count toward its own limits only,
never toward the ceiling: otherwise test-mode apps, which anyone may create, could use up a
person's codes at every merchant. Every counter lives in the database, so all server processes
share it.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import phonenumbers
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from apps_auth.models import App, Mode
from core.errors import InvalidInput, NotFound, Throttled
from core.rows import fields_save
from members.errors import InvalidOtp, TooManyAttempts
from members.models import Member, OtpChallenge, OtpChannel
from members.sms import sms_backend
from members.tokens import MemberToken, member_token_issue

CODE_LIFETIME = timedelta(minutes=5)
MAX_ATTEMPTS = 5
REQUESTS_PER_WINDOW = 3
REQUEST_WINDOW = timedelta(minutes=10)
HOURLY_WINDOW = timedelta(hours=1)  # of the destination limit and the app's quota
# Numbers that can take a text message at the ordinary rate; premium-rate, toll-free,
# shared-cost, VoIP, pager, fixed-line and unknown numbers are refused.
SMS_NUMBER_TYPES = {
    phonenumbers.PhoneNumberType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
}
_NUMBER_TYPE_NAMES = {
    value: name.lower().replace("_", " ")
    for name, value in vars(phonenumbers.PhoneNumberType).items()
    if name.isupper()
}


@dataclass(frozen=True)
class VerifiedOtp:
    member: Member
    token: MemberToken


def _code_digest(challenge_id: str, code: str) -> str:
    key = f"otp:{settings.SECRET_KEY}".encode()
    return hmac.new(key, f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    tail = local[-1] if len(local) > 2 else ""
    return f"{local[0]}***{tail}@{domain}"


def mask_phone(phone: str) -> str:
    return f"{phone[:4]}{'*' * (len(phone) - 6)}{phone[-2:]}"


def _destination(member: Member, channel: str | None) -> tuple[str, str]:
    """The channel (email when the member has one, by default) and the address to send to.

    Raises `InvalidInput` when the member has no address for the channel, or for SMS a number
    that is not a mobile one."""
    channel = channel or (OtpChannel.EMAIL if member.email else OtpChannel.SMS)
    address = member.email if channel == OtpChannel.EMAIL else str(member.phone or "")
    if not address:
        raise InvalidInput(
            "The member has no address for this channel.",
            details={"channel": [f"The member has no {channel} address."]},
        )
    if channel == OtpChannel.SMS:
        kind = phonenumbers.number_type(phonenumbers.parse(address))
        if kind not in SMS_NUMBER_TYPES:
            message = (
                f"The phone {address} is not a mobile number "
                f"({_NUMBER_TYPE_NAMES.get(kind, 'unknown')}); codes are texted to mobiles only."
            )
            raise InvalidInput(message, details={"phone": [message]})
    return channel, address


def destination_digest(channel: str, address: str) -> str:
    """A keyed digest of where a code goes, so that codes are counted per destination without
    keeping the address. An email's subaddress (`name+tag@`) counts as the address itself."""
    if channel == OtpChannel.EMAIL:
        local, _, domain = address.lower().partition("@")
        address = f"{local.split('+', 1)[0]}@{domain}"
    key = f"otp-destination:{settings.SECRET_KEY}".encode()
    return hmac.new(key, f"{channel}:{address}".encode(), hashlib.sha256).hexdigest()


def _wait_when_full(challenges, *, limit: int, window: timedelta, now) -> int | None:
    """Seconds until `challenges` (a queryset) hold fewer than `limit` created within `window`,
    or None when they do already."""
    if limit <= 0:
        return int(window.total_seconds())
    recent = challenges.filter(created_at__gt=now - window).order_by("created_at")
    count = recent.count()
    if count < limit:
        return None
    # The oldest codes leave the window first; one more may go when count - limit + 1 have.
    freed_at = recent.values_list("created_at", flat=True)[count - limit] + window
    return max(1, int((freed_at - now).total_seconds()) + 1)


def otp_request(*, app: App, member: Member, channel: str | None = None) -> OtpChallenge:
    """Sends a new code to the member by email or SMS, after the transaction commits; for a
    test-mode app, sends nothing and gives the code back as the challenge's `test_code`.

    Raises `InvalidInput` when the member has no address for the channel or an SMS would go to
    a number that is not a mobile, and `Throttled` (nothing sent) past 3 requests of the member
    in 10 minutes, past `CASHBACK_OTP_DESTINATION_LIMIT` codes to the address in an hour from
    this app or, for a live-mode app, `CASHBACK_OTP_DESTINATION_CEILING` sent by all apps, or
    past the app's hourly quota.
    """
    channel, address = _destination(member, channel)
    code = f"{secrets.randbelow(10**6):06d}"
    challenge = _create_challenge(
        app=app, member=member, channel=channel, address=address, code=code
    )
    if app.mode == Mode.TEST:
        # An integrator's test app needs no inbox: the answer carries the code, nothing is sent.
        challenge.test_code = code
        return challenge
    message = f"Your cashback code is {code}. It expires in 5 minutes."
    if channel == OtpChannel.EMAIL:
        send_mail("Your cashback code", message, None, [address])
    else:
        sms_backend().send(address, message)
    return challenge


@transaction.atomic
def _create_challenge(*, app, member, channel, address, code) -> OtpChallenge:
    # One request at a time per member, then per app and per destination (always in this
    # order), so that each count below holds until this challenge is committed.
    Member.objects.select_for_update().filter(app=app, pk=member.pk).first()
    digest = destination_digest(channel, address)
    OtpChallenge.objects.lock_counts(app_pk=app.pk, destination_digest=digest)
    now = timezone.now()
    sent = app.mode == Mode.LIVE
    limits = [
        (
            OtpChallenge.objects.filter(app=app, member=member),
            REQUESTS_PER_WINDOW,
            REQUEST_WINDOW,
            "Too many codes requested; retry later.",
        ),
        # Per app, so that one app cannot use up an address's codes for the others.
        (
            OtpChallenge.objects.filter(app=app, destination_digest=digest),
            settings.CASHBACK_OTP_DESTINATION_LIMIT,
            HOURLY_WINDOW,
            "Too many codes were sent to this address; retry later.",
        ),
        (
            OtpChallenge.objects.filter(app=app),
            app.otp_quota,
            HOURLY_WINDOW,
            "This app has sent its hourly quota of codes; retry later.",
        ),
    ]
    for challenges, limit, window, message in limits:
        wait = _wait_when_full(challenges, limit=limit, window=window, now=now)
        if wait is not None:
            raise Throttled(message, retry_after=wait)
    # The ceiling of codes sent to the address by all apps (the one statement of the API that
    # reads across apps: a multi-node read where the apps are distributed). Its answer is the
    # per-app limit's, with the whole hour to wait: when other apps sent their codes is theirs.
    ceiling = OtpChallenge.objects.filter(
        destination_digest=digest, sent=True, created_at__gt=now - HOURLY_WINDOW
    )
    if sent and ceiling.count() >= settings.CASHBACK_OTP_DESTINATION_CEILING:
        raise Throttled(
            "Too many codes were sent to this address; retry later.",
            retry_after=int(HOURLY_WINDOW.total_seconds()),
        )
    challenge = OtpChallenge(
        app=app,
        member=member,
        channel=channel,
        destination_digest=digest,
        sent=sent,
        destination_masked=mask_email(address)
        if channel == OtpChannel.EMAIL
        else mask_phone(address),
        expires_at=now + CODE_LIFETIME,
    )
    challenge.code_hash = _code_digest(challenge.challenge_id, code)
    challenge.save()
    return challenge


def otp_verify(*, app: App, challenge_id: str, code: str) -> VerifiedOtp:
    """Trades a right code for a member token. The code works once.

    A miss is counted and committed before the error is raised. Raises `NotFound` (unknown
    challenge, or another app's), `InvalidOtp` (wrong, used or expired; with the attempts left)
    and `TooManyAttempts` once 5 codes were wrong, even for the right one.
    """
    outcome = _check_and_count(app=app, challenge_id=challenge_id, code=code)
    if isinstance(outcome, Exception):
        raise outcome
    return VerifiedOtp(member=outcome, token=member_token_issue(app=app, member_id=outcome.pk))


@transaction.atomic(durable=True)
def _check_and_count(*, app, challenge_id, code) -> Member | Exception:
    challenge = (
        OtpChallenge.objects.select_for_update()
        .select_related("member")
        .filter(app=app, challenge_id=challenge_id, member__app=app)
        .first()
    )
    if challenge is None:
        return NotFound("No such challenge.")
    now = timezone.now()
    if challenge.failed_attempts >= MAX_ATTEMPTS:
        wait = max(1, int((challenge.expires_at - now).total_seconds()) + 1)
        return TooManyAttempts(retry_after=wait)
    if challenge.used_at is not None:
        return InvalidOtp("This code was already used; request a new one.")
    if challenge.expires_at <= now:
        return InvalidOtp("This code has expired; request a new one.")
    if hmac.compare_digest(challenge.code_hash, _code_digest(challenge.challenge_id, code)):
        challenge.used_at = now
        fields_save(challenge, "used_at")
        return challenge.member
    challenge.failed_attempts += 1
    fields_save(challenge, "failed_attempts")
    return InvalidOtp(details={"attempts_left": MAX_ATTEMPTS - challenge.failed_attempts})
