"""One-time codes that prove a member's identity and yield a member token.

Codes are 6 digits from `secrets`, stored as a keyed digest, valid 5 minutes, good once, dead
after 5 wrong tries; a member may ask for 3 codes per 10 minutes. Every counter lives in the
database, so all server processes share it.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from apps_auth.models import App
from core.errors import InvalidInput, NotFound, Throttled
from members.errors import InvalidOtp, TooManyAttempts
from members.models import Member, OtpChallenge, OtpChannel
from members.sms import sms_backend
from members.tokens import MemberToken, member_token_issue

CODE_LIFETIME = timedelta(minutes=5)
MAX_ATTEMPTS = 5
REQUESTS_PER_WINDOW = 3
REQUEST_WINDOW = timedelta(minutes=10)


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
    """The channel (email when the member has one, by default) and the address to send to."""
    channel = channel or (OtpChannel.EMAIL if member.email else OtpChannel.SMS)
    address = member.email if channel == OtpChannel.EMAIL else str(member.phone or "")
    if not address:
        raise InvalidInput(
            "The member has no address for this channel.",
            details={"channel": [f"The member has no {channel} address."]},
        )
    return channel, address


def otp_request(*, app: App, member: Member, channel: str | None = None) -> OtpChallenge:
    """Sends a new code to the member by email or SMS, after the transaction commits.

    Raises `InvalidInput` when the member has no address for the channel and `Throttled` past
    3 requests in 10 minutes.
    """
    channel, address = _destination(member, channel)
    code = f"{secrets.randbelow(10**6):06d}"
    challenge = _create_challenge(
        app=app, member=member, channel=channel, address=address, code=code
    )
    message = f"Your cashback code is {code}. It expires in 5 minutes."
    if channel == OtpChannel.EMAIL:
        send_mail("Your cashback code", message, None, [address])
    else:
        sms_backend().send(address, message)
    return challenge


@transaction.atomic
def _create_challenge(*, app, member, channel, address, code) -> OtpChallenge:
    Member.objects.select_for_update().filter(pk=member.pk).first()  # one request at a time
    now = timezone.now()
    recent = list(
        OtpChallenge.objects.filter(member=member, created_at__gt=now - REQUEST_WINDOW)
        .order_by("created_at")
        .values_list("created_at", flat=True)
    )
    if len(recent) >= REQUESTS_PER_WINDOW:
        wait = recent[0] + REQUEST_WINDOW - now
        raise Throttled(
            "Too many codes requested; retry later.",
            retry_after=max(1, int(wait.total_seconds()) + 1),
        )
    challenge = OtpChallenge(
        app=app,
        member=member,
        channel=channel,
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
        .filter(app=app, challenge_id=challenge_id)
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
        challenge.save(update_fields=["used_at"])
        return challenge.member
    challenge.failed_attempts += 1
    challenge.save(update_fields=["failed_attempts"])
    return InvalidOtp(details={"attempts_left": MAX_ATTEMPTS - challenge.failed_attempts})
