from datetime import timedelta

import jwt
import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from members.errors import MemberTokenInvalid
from members.tokens import member_token_issue, member_token_member_id
from tests.factories import AppFactory, MemberFactory

OLD_KEY = "previous-signing-key-0123456789-abcdefghij"
NEW_KEY = "current-signing-key-0123456789-abcdefghijk"


def claims(app, member, **overrides):
    now = timezone.now()
    body = {
        "iss": django_settings.MEMBER_TOKEN_ISSUER,
        "aud": app.app_id,
        "sub": str(member.pk),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "jti": "j1",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


@pytest.fixture
def member(db):
    return MemberFactory.create()


def test_a_token_names_its_member_for_its_app_only(member):
    token = member_token_issue(app=member.app, member_id=member.pk).token
    assert member_token_member_id(app=member.app, token=token) == member.pk
    with pytest.raises(MemberTokenInvalid):
        member_token_member_id(app=AppFactory.create(), token=token)


def test_the_token_carries_every_required_claim(member):
    token = member_token_issue(app=member.app, member_id=member.pk).token
    decoded = jwt.decode(
        token,
        django_settings.MEMBER_TOKEN_SIGNING_KEY,
        algorithms=["HS256"],
        audience=member.app.app_id,
    )
    assert set(decoded) == {"iss", "aud", "sub", "iat", "exp", "jti"}
    assert decoded["exp"] - decoded["iat"] == django_settings.MEMBER_TOKEN_TTL_SECONDS


@pytest.mark.parametrize("missing", ["iss", "aud", "sub", "iat", "exp", "jti"])
def test_a_token_without_a_required_claim_is_refused(member, missing):
    token = jwt.encode(
        claims(member.app, member, **{missing: None}),
        django_settings.MEMBER_TOKEN_SIGNING_KEY,
        algorithm="HS256",
    )
    with pytest.raises(MemberTokenInvalid):
        member_token_member_id(app=member.app, token=token)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_alg_none_forged_and_resigned_tokens_are_refused(member):
    body = claims(member.app, member)
    header, payload, _ = jwt.encode(
        body, django_settings.MEMBER_TOKEN_SIGNING_KEY, algorithm="HS256"
    ).split(".")
    forged = [
        jwt.encode(body, None, algorithm="none"),
        jwt.encode(body, "an-attackers-own-key-0123456789-abcdef", algorithm="HS256"),
        jwt.encode(body, django_settings.MEMBER_TOKEN_SIGNING_KEY, algorithm="HS512"),
        f"{header}.{payload}.",
        f"{header}.{payload}.c2lnbmF0dXJl",
    ]
    for token in forged:
        with pytest.raises(MemberTokenInvalid):
            member_token_member_id(app=member.app, token=token)


def test_an_expired_token_is_refused(member):
    token = member_token_issue(app=member.app, member_id=member.pk, ttl_seconds=-5).token
    with pytest.raises(MemberTokenInvalid, match="expired"):
        member_token_member_id(app=member.app, token=token)


def test_a_previous_key_still_verifies_while_the_new_one_signs(member, settings):
    settings.MEMBER_TOKEN_SIGNING_KEY = OLD_KEY
    old_token = member_token_issue(app=member.app, member_id=member.pk).token

    settings.MEMBER_TOKEN_SIGNING_KEY = NEW_KEY
    settings.MEMBER_TOKEN_PREVIOUS_SIGNING_KEYS = [OLD_KEY]
    new_token = member_token_issue(app=member.app, member_id=member.pk).token
    assert jwt.decode(new_token, NEW_KEY, algorithms=["HS256"], audience=member.app.app_id)
    assert member_token_member_id(app=member.app, token=old_token) == member.pk
    assert member_token_member_id(app=member.app, token=new_token) == member.pk

    settings.MEMBER_TOKEN_PREVIOUS_SIGNING_KEYS = []
    with pytest.raises(MemberTokenInvalid):
        member_token_member_id(app=member.app, token=old_token)
