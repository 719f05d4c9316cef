"""A catalogue of hostile requests across every endpoint. Each answers a 4xx in the error
envelope and changes no balance and no row count."""

import json

import pytest

from apps_auth.models import IdempotencyRecord
from cashback.models import Wallet
from members.models import Member, OtpChallenge
from tests.helpers import counts, give_balance

API = "/api/v1/cashback"
BIG = "x" * 70_000
DROP = object()  # leaves the field out of the body

# (name, method, path, body: dict (sent as JSON), or str (sent raw), content type)
CATALOGUE = [
    ("earn amount as text", "post", "earn", {"purchase_amount": "abc"}),
    ("earn amount as bool", "post", "earn", {"purchase_amount": True}),
    ("earn amount as list", "post", "earn", {"purchase_amount": [50]}),
    ("earn amount as object", "post", "earn", {"purchase_amount": {"$gt": 0}}),
    ("earn amount null", "post", "earn", {"purchase_amount": None}),
    ("earn amount empty", "post", "earn", {"purchase_amount": ""}),
    ("earn amount zero", "post", "earn", {"purchase_amount": 0}),
    ("earn amount negative", "post", "earn", {"purchase_amount": -50}),
    ("earn amount too precise", "post", "earn", {"purchase_amount": "50.0001"}),
    ("earn amount too large", "post", "earn", {"purchase_amount": "1000000000.001"}),
    ("earn amount exponent text", "post", "earn", {"purchase_amount": "5e1"}),
    (
        "earn NaN",
        "post",
        "earn",
        '{"card_id": {card}, "member_id": {member}, "purchase_amount": NaN}',
    ),
    (
        "earn Infinity",
        "post",
        "earn",
        '{"card_id": {card}, "member_id": {member}, "purchase_amount": Infinity}',
    ),
    (
        "earn 1e309",
        "post",
        "earn",
        '{"card_id": {card}, "member_id": {member}, "purchase_amount": 1e309}',
    ),
    (
        "earn -1e309",
        "post",
        "earn",
        '{"card_id": {card}, "member_id": {member}, "purchase_amount": -1e309}',
    ),
    ("earn card_id as SQL", "post", "earn", {"card_id": "1; DROP TABLE cards_card; --"}),
    ("earn card_id huge", "post", "earn", {"card_id": 10**30}),
    ("earn card_id float", "post", "earn", {"card_id": 1.5}),
    ("earn member_id SQL", "post", "earn", {"member_id": "1 OR 1=1"}),
    (
        "earn email script",
        "post",
        "earn",
        {"member_id": DROP, "email": "<script>alert(1)</script>"},
    ),
    ("earn email SQL", "post", "earn", {"member_id": DROP, "email": "' OR ''='"}),
    ("earn phone garbage", "post", "earn", {"member_id": DROP, "phone": "'); DELETE FROM x; --"}),
    ("earn reference oversized", "post", "earn", {"reference": "r" * 256}),
    ("earn reference as object", "post", "earn", {"reference": {"a": 1}}),
    ("earn metadata as list", "post", "earn", {"metadata": [1, 2]}),
    ("earn metadata oversized", "post", "earn", {"metadata": {"x": "y" * 17_000}}),
    (
        "earn metadata too deep",
        "post",
        "earn",
        {"metadata": json.loads('{"a":' * 30 + "1" + "}" * 30)},
    ),
    (
        "earn body nested 900 deep with a lone surrogate",
        "post",
        "earn",
        '{"card_id": {card}, "metadata": ' + '{"a":' * 900 + '"\\ud800"' + "}" * 901,
    ),
    (
        "earn member_name oversized",
        "post",
        "earn",
        {"member_id": DROP, "email": "n@example.com", "member_name": "n" * 201},
    ),
    ("earn sets new_balance", "post", "earn", {"new_balance": 1_000_000}),
    ("earn sets cashback_earned", "post", "earn", {"cashback_earned": 999}),
    ("earn sets cashback_percentage", "post", "earn", {"cashback_percentage": 100}),
    ("earn sets transaction_id", "post", "earn", {"transaction_id": 1}),
    ("earn body a list", "post", "earn", "[1, 2, 3]"),
    ("earn body a string", "post", "earn", '"earn"'),
    ("earn malformed JSON", "post", "earn", '{"card_id": {card}, '),
    ("earn oversized body", "post", "earn", {"member_name": BIG}),
    (
        "earn as form data",
        "post",
        "earn",
        "card_id=1&purchase_amount=50",
        "application/x-www-form-urlencoded",
    ),
    ("earn as text", "post", "earn", "card_id=1", "text/plain"),
    ("earn as XML", "post", "earn", "<earn><card_id>1</card_id></earn>", "application/xml"),
    (
        "earn bad Idempotency-Key",
        "post",
        "earn",
        {},
        "application/json",
        {"Idempotency-Key": "k" * 256},
    ),
    ("redeem amount negative", "post", "redeem", {"amount": -1}),
    ("redeem amount NaN text", "post", "redeem", {"amount": "NaN"}),
    ("redeem pin numeric", "post", "redeem", {"amount": 1, "pin": 1234}),
    ("redeem pin SQL", "post", "redeem", {"amount": 1, "pin": "1' OR '1'='1"}),
    ("redeem sets balance_after", "post", "redeem", {"amount": 1, "balance_after": 100}),
    ("redeem for another member", "post", "redeem", {"amount": 1, "member_id": 999_999}),
    ("refund amount zero", "post", "refund", {"refund_amount": 0}),
    ("refund deduct negative", "post", "refund", {"refund_amount": 10, "cashback_to_deduct": -5}),
    (
        "refund deduct too precise",
        "post",
        "refund",
        {"refund_amount": 10, "cashback_to_deduct": "1.0001"},
    ),
    (
        "refund original as text",
        "post",
        "refund",
        {"refund_amount": 10, "original_transaction_id": "abc"},
    ),
    (
        "refund sets cashback_deducted",
        "post",
        "refund",
        {"refund_amount": 10, "cashback_deducted": 0},
    ),
    ("balance card SQL", "get", "balance", {"card_id": "1 OR 1=1", "member_id": "{member}"}),
    ("balance member huge", "get", "balance", {"card_id": "{card}", "member_id": "9" * 40}),
    ("history limit 1e309", "get", "history", {"limit": "1e309"}),
    ("history limit negative", "get", "history", {"limit": "-5"}),
    ("history offset text", "get", "history", {"offset": "abc"}),
    ("history type SQL", "get", "history", {"type": "earning' OR '1'='1"}),
    ("history date script", "get", "history", {"created_after": "<script>"}),
    ("otp channel unknown", "post", "otp/request", {"channel": "pigeon"}),
    ("otp code numeric", "post", "otp/verify", {"challenge_id": "otp_x", "code": 123456}),
    ("otp challenge SQL", "post", "otp/verify", {"challenge_id": "' OR 1=1 --", "code": "123456"}),
    (
        "otp challenge oversized",
        "post",
        "otp/verify",
        {"challenge_id": "c" * 500, "code": "123456"},
    ),
    ("pin too short", "post", "pin", {"pin": "12"}),
    ("pin as list", "post", "pin", {"pin": ["1", "2", "3", "4"]}),
    # Bodies a JSON parser reads differently from what the merchant meant, or that the
    # database cannot store: each is refused before anything runs.
    *[
        (
            f"earn charset {charset}",
            "post",
            "earn",
            '{"card_id": {card}, "member_id": {member}, "purchase_amount": 50}',
            f"application/json; charset={charset}",
        )
        for charset in (
            *("rot13", "base64", "hex", "zlib", "bz2", "no-such-charset"),
            *("punycode", "undefined", "unicode_escape", "raw_unicode_escape", "utf-7"),
        )
    ],
    (
        "earn utf-7 surrogate in metadata",
        "post",
        "earn",
        '{"card_id": {card}, "member_id": {member}, "purchase_amount": 50,'
        ' "metadata": {"x": "+2AA-"}}',
        "application/json; charset=utf-7",
    ),
    (
        "earn lone surrogate in metadata",
        "post",
        "earn",
        {"purchase_amount": 50, "metadata": {"note": "\ud800"}},
    ),
    (
        "earn lone surrogate as metadata key",
        "post",
        "earn",
        {"purchase_amount": 50, "metadata": {"\udfff": 1}},
    ),
    ("earn lone surrogate in reference", "post", "earn", {"reference": "ref-\ud800"}),
    (
        "earn lone surrogate in member_name",
        "post",
        "earn",
        {"member_id": DROP, "email": "new@example.com", "member_name": "A\udbff"},
    ),
    (
        "earn lone surrogate with Idempotency-Key",
        "post",
        "earn",
        {"purchase_amount": 50, "metadata": {"a": ["\udc00"]}},
        "application/json",
        {"Idempotency-Key": "surrogate-1"},
    ),
    ("redeem lone surrogate in pin", "post", "redeem", {"amount": 1, "pin": "12\ud8004"}),
    ("otp verify lone surrogate", "post", "otp/verify", {"challenge_id": "\ud800", "code": "1"}),
    ("earn amount Arabic-Indic digits", "post", "earn", {"purchase_amount": "\u0665\u0660"}),
    ("earn amount full-width digits", "post", "earn", {"purchase_amount": "\uff15\uff10"}),
    ("refund amount Devanagari digits", "post", "refund", {"refund_amount": "\u0967\u0966"}),
    ("history limit Arabic-Indic digits", "get", "history", {"limit": "\u0665"}),
    ("history offset full-width digits", "get", "history", {"offset": "\uff11"}),
    (
        "earn duplicate key",
        "post",
        "earn",
        '{"card_id": {card}, "member_id": {member}, "purchase_amount": 1, "purchase_amount": 9000}',
    ),
    (
        "earn duplicate key in metadata",
        "post",
        "earn",
        '{"card_id": {card}, "member_id": {member}, "purchase_amount": 50,'
        ' "metadata": {"till": 1, "till": 2}}',
    ),
]

PATHS = {
    "earn": "/cashback/earn",
    "redeem": "/cashback/redeem",
    "refund": "/cashback/refund",
    "balance": "/cashback/balance",
    "history": "/cashback/history",
    "otp/request": "/auth/otp/request",
    "otp/verify": "/auth/otp/verify",
    "pin": "/members/pin",
}


def snapshot():
    return (
        counts(),
        OtpChallenge.objects.count(),
        IdempotencyRecord.objects.count(),
        sorted(Wallet.objects.values_list("balance", flat=True)),
        sorted(Member.objects.values_list("pin_hash", flat=True)),
    )


@pytest.mark.parametrize("case", CATALOGUE, ids=[str(case[0]) for case in CATALOGUE])
def test_hostile_request_is_refused_and_changes_nothing(
    api, merchant, card, member, member_token, case
):
    _, method, endpoint, body, *rest = case
    content_type = rest[0] if rest else "application/json"
    extra_headers = rest[1] if len(rest) > 1 else {}
    give_balance(app=merchant.app, card=card, member=member, purchase="100")
    ids = {"card": card.pk, "member": member.pk}
    before = snapshot()

    path = API + PATHS[endpoint]
    headers = {"X-Member-Token": member_token, **extra_headers}
    if method == "get":
        query = {"card_id": card.pk, "member_id": member.pk}
        query.update({k: v.format(**ids) if isinstance(v, str) else v for k, v in body.items()})
        response = api.get(path, query, headers=headers)
    elif isinstance(body, dict):
        full = {"card_id": card.pk, "member_id": member.pk}
        if endpoint in ("redeem", "pin", "otp/verify"):
            full = {"card_id": card.pk} if endpoint == "redeem" else {}
        full.update(body)
        full = {k: v for k, v in full.items() if v is not DROP}
        response = api.generic(
            "POST", path, json.dumps(full), content_type=content_type, headers=headers
        )
    else:
        raw = body.replace("{card}", str(card.pk)).replace("{member}", str(member.pk))
        response = api.generic("POST", path, raw, content_type=content_type, headers=headers)

    assert 400 <= response.status_code < 500, (response.status_code, response.content[:300])
    payload = response.json()
    assert payload["success"] is False
    assert set(payload["error"]) == {"code", "message", "details"}
    assert snapshot() == before


def test_the_catalogue_is_large():
    assert len(CATALOGUE) >= 40
