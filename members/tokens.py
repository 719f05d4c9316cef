"""Member tokens: short-lived JWTs binding a member to one app (PyJWT, HS256 pinned)."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from django.conf import settings
from django.utils import timezone

from apps_auth.idempotency import Withheld
from apps_auth.models import App
from members.errors import MemberTokenExpired, MemberTokenInvalid, MemberTokenMissing

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["iss", "aud", "sub", "iat", "exp", "jti"]


@dataclass(frozen=True)
class MemberToken:
    token: str
    expires_at: datetime


def member_token_issue(*, app: App, member_id: int, ttl_seconds: int | None = None) -> MemberToken:
    now = timezone.now()
    ttl = ttl_seconds if ttl_seconds is not None else settings.MEMBER_TOKEN_TTL_SECONDS
    expires_at = now + timedelta(seconds=ttl)
    claims = {
        "iss": settings.MEMBER_TOKEN_ISSUER,
        "aud": app.app_id,
        "sub": str(member_id),
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "jti": uuid.uuid4().hex,
    }
    token = jwt.encode(claims, settings.MEMBER_TOKEN_SIGNING_KEY, algorithm=ALGORITHM)
    return MemberToken(token=token, expires_at=expires_at.replace(microsecond=0))


def _token_withhold(data: dict) -> dict:
    """The verify answer as kept for replays: the token's claims (readable by anyone who holds
    the token; only the signature makes it a credential) instead of the token."""
    claims = jwt.decode(data["member_token"], options={"verify_signature": False})
    return {**data, "member_token": None, "member_token_claims": claims}


def _token_restore(data: dict) -> dict:
    """Signs the kept claims again: the same token, byte for byte, while the key is the same."""
    kept = dict(data)
    stored = kept.pop("member_token_claims")
    claims = {name: stored[name] for name in REQUIRED_CLAIMS}
    token = jwt.encode(claims, settings.MEMBER_TOKEN_SIGNING_KEY, algorithm=ALGORITHM)
    return {**kept, "member_token": token}


# A replayed OTP verify answers its member token without the token being stored.
MEMBER_TOKEN_WITHHELD = Withheld(keep=_token_withhold, restore=_token_restore)


def member_token_member_id(*, app: App, token: str) -> int:
    """The member id a token of this app names. Raises `MemberTokenInvalid` (401) otherwise."""
    if not token:
        raise MemberTokenMissing()
    claims = _decode(app=app, token=token)
    sub = claims["sub"]
    if not isinstance(sub, str) or not sub.isdigit():
        raise MemberTokenInvalid()
    return int(sub)


def _decode(*, app: App, token: str) -> dict:
    """Verifies with the signing key, then with each previous key still accepted (rotation)."""
    keys = [settings.MEMBER_TOKEN_SIGNING_KEY, *settings.MEMBER_TOKEN_PREVIOUS_SIGNING_KEYS]
    for key in keys:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=app.app_id,
                issuer=settings.MEMBER_TOKEN_ISSUER,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError:
            raise MemberTokenExpired() from None
        except jwt.InvalidTokenError:
            raise MemberTokenInvalid() from None
    raise MemberTokenInvalid()
