"""What the JSON parser reads, and what it refuses as a `400 parse_error` before anything runs."""

import contextlib
import json
import time
from io import BytesIO

import pytest
from rest_framework.exceptions import ParseError

from cashback.models import LedgerEntry
from core.api.fields import IdField, WholeNumberField
from core.api.parsers import DecimalJSONParser

EARN = "/api/v1/cashback/cashback/earn"


def _earn(api, card, member, raw: str, content_type="application/json", encoding="utf-8"):
    body = raw.replace("{card}", str(card.pk)).replace("{member}", str(member.pk))
    return api.generic("POST", EARN, body.encode(encoding), content_type=content_type)


def test_a_surrogate_pair_is_an_ordinary_character(api, card, member):
    # "\ud83d\ude00" is one emoji written as a UTF-16 pair: text like any other.
    response = _earn(
        api,
        card,
        member,
        '{"card_id": {card}, "member_id": {member}, "purchase_amount": 50,'
        ' "metadata": {"note": "paid \\ud83d\\ude00"}}',
    )
    assert response.status_code == 200, response.content
    entry = LedgerEntry.objects.get(pk=response.json()["data"]["transaction_id"])
    assert entry.metadata == {"note": "paid \N{GRINNING FACE}"}


def test_a_lone_surrogate_is_a_parse_error(api, card, member):
    response = _earn(
        api,
        card,
        member,
        '{"card_id": {card}, "member_id": {member}, "purchase_amount": 50,'
        ' "metadata": {"note": "\\ud800"}}',
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
    assert "surrogate" in response.json()["error"]["message"]
    assert not LedgerEntry.objects.exists()


def test_a_duplicate_key_is_named(api, card, member):
    response = _earn(
        api,
        card,
        member,
        '{"card_id": {card}, "member_id": {member}, "purchase_amount": 1, "purchase_amount": 90}',
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
    assert "'purchase_amount' appears twice" in response.json()["error"]["message"]
    assert not LedgerEntry.objects.exists()


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", "utf8", "latin-1", "us-ascii", "utf-16"])
def test_a_text_charset_is_read(api, card, member, charset):
    response = _earn(
        api,
        card,
        member,
        '{"card_id": {card}, "member_id": {member}, "purchase_amount": 50,'
        ' "metadata": {"note": "caf\\u00e9"}}',  # a JSON escape: ASCII in every charset
        content_type=f"application/json; charset={charset}",
        encoding=charset,
    )
    assert response.status_code == 200, response.content
    entry = LedgerEntry.objects.get(pk=response.json()["data"]["transaction_id"])
    assert entry.metadata == {"note": "caf\u00e9"}


def test_a_codec_that_is_not_text_is_a_parse_error(api, card, member):
    response = _earn(
        api,
        card,
        member,
        '{"card_id": {card}, "member_id": {member}, "purchase_amount": 50}',
        content_type="application/json; charset=zlib",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"
    assert "'zlib' is not one this API reads" in response.json()["error"]["message"]


@pytest.mark.parametrize("text", ["\u0665", "\uff15", "\u0967\u0966", "5\u0660", "0x5", "5e1"])
def test_whole_numbers_take_ascii_digits_only(text):
    for field in (IdField(), WholeNumberField()):
        with pytest.raises(Exception, match="valid integer"):
            field.run_validation(text)


@pytest.mark.parametrize(("text", "value"), [("5", 5), (" 12 ", 12), ("12.0", 12), (7, 7)])
def test_whole_numbers_as_before(text, value):
    assert IdField().run_validation(text) == value


# A body's depth: the objects and arrays within one another, the body itself being the first.
WEBHOOKS = "/api/v1/cashback/webhooks"
DEPTHS = [31, 33, 500, 950, 5000, 100_000]
TOO_DEEP = {
    "code": "parse_error",
    "message": "The body is nested deeper than 32 levels of objects and arrays.",
    "details": {},
}


def _nested(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


@pytest.fixture
def large_bodies(settings):
    # The deepest bodies are larger than a body may be: the depth, not the size, is on trial.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024


@pytest.mark.usefixtures("large_bodies")
@pytest.mark.parametrize("levels", DEPTHS)
def test_a_body_nested_deeper_than_32_levels_is_a_parse_error_on_earn(api, card, member, levels):
    body = (
        f'{{"card_id": {card.pk}, "member_id": {member.pk}, "purchase_amount": 50,'
        f' "metadata": {_nested(levels)}}}'
    )
    response = api.generic(
        "POST", EARN, body, content_type="application/json", headers={"Idempotency-Key": "k-1"}
    )
    assert response.status_code == 400, response.content[:300]
    if levels + 1 <= 32:  # as before: the metadata breaks its own rule
        assert response.json()["error"]["details"] == {
            "metadata": ["Must be nested at most 16 levels deep."]
        }
    else:
        assert response.json()["error"] == TOO_DEEP
    assert not LedgerEntry.objects.exists()


@pytest.mark.usefixtures("large_bodies")
@pytest.mark.parametrize("levels", DEPTHS)
def test_a_body_nested_deeper_than_32_levels_is_a_parse_error_on_webhooks(api, levels):
    body = f'{{"url": "https://shop.example.com/hook", "metadata": {_nested(levels)}}}'
    response = api.generic(
        "POST", WEBHOOKS, body, content_type="application/json", headers={"Idempotency-Key": "k-2"}
    )
    assert response.status_code == 400, response.content[:300]
    if levels + 1 <= 32:  # as before: a field the endpoint does not take
        assert response.json()["error"]["code"] == "validation_error"
        assert "metadata" in response.json()["error"]["details"]
    else:
        assert response.json()["error"] == TOO_DEEP


@pytest.mark.usefixtures("large_bodies")
@pytest.mark.parametrize("levels", DEPTHS)
def test_a_deep_body_is_refused_where_the_whole_body_is_fingerprinted(api, levels):
    # Rotating a secret takes no body, yet an Idempotency-Key fingerprints whatever came.
    response = api.generic(
        "POST",
        f"{WEBHOOKS}/999999/rotate-secret",
        _nested(levels),
        content_type="application/json",
        headers={"Idempotency-Key": "k-3"},
    )
    if levels + 1 <= 32:
        assert response.status_code == 404, response.content[:300]
    else:
        assert response.status_code == 400, response.content[:300]
        assert response.json()["error"] == TOO_DEEP


@pytest.mark.parametrize(
    ("body", "depth"),
    [
        ("1", 0),
        ("[" * 32 + "]" * 32, 32),
        ("[" * 33 + "]" * 33, 33),
        ('{"a":' * 32 + "{}" + "}" * 32, 33),
        ('{"a":' * 31 + "[]" + "}" * 31, 32),
        ("[" + "[], " * 500 + "[]]", 2),
        # Brackets inside strings are text, not depth.
        ('{"note": "' + "[{" * 100 + '"}', 1),
        ('{"note": "\\"' + "[{" * 100 + '"}', 1),
        ('{"note": "\\\\", "n": "' + "[{" * 100 + '"}', 1),
        ('[{"a": "}}}}]]]"}, ' + "[" * 31 + "]" * 31 + "]", 32),
        ('[{"a": "}}}}]]]"}, ' + "[" * 32 + "]" * 32 + "]", 33),
    ],
)
def test_the_parser_reads_32_levels_and_refuses_33(body, depth):
    assert json.loads(body) is not None  # every case is valid JSON
    parse = DecimalJSONParser().parse
    if depth <= 32:
        assert parse(BytesIO(body.encode()), "application/json") == json.loads(body)
    else:
        with pytest.raises(ParseError, match="nested deeper than 32 levels"):
            parse(BytesIO(body.encode()), "application/json")


def test_a_deep_body_with_a_lone_surrogate_is_refused_for_its_depth(api, card):
    inner = '{"a":' * 900 + '"\\ud800"' + "}" * 900
    body = f'{{"card_id": {card.pk}, "metadata": {inner}}}'
    response = api.generic("POST", EARN, body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"] == TOO_DEEP


def test_a_lone_surrogate_is_found_at_any_depth_the_parser_reads(api, card):
    inner = '{"a":' * 30 + '["x", "\\ud800"]' + "}" * 30
    body = f'{{"card_id": {card.pk}, "metadata": {inner}}}'
    response = api.generic("POST", EARN, body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"]["code"] == "parse_error"
    assert "surrogate" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        '{"reference":"' + '\\"' * 500_000 + "[" * 40,  # a string never closed, of quotes
        "[" * 20 + '"' + '\\"' * 500_000,
        '["' + "\\\\" * 500_000 + '",' + "[" * 40 + "]" * 40 + "]",
    ],
    ids=["unclosed_string_of_escaped_quotes", "deep_then_unclosed", "backslashes_then_deep"],
)
def test_the_nesting_is_measured_in_one_pass_whatever_the_body_holds(body):
    """A measure that rescans from every quote took 16 s on 64 KB of escaped quotes; one pass
    takes a few milliseconds per 64 KB. A megabyte each here, well within a second in one pass,
    hours in the other."""
    started = time.perf_counter()
    with contextlib.suppress(ParseError):
        DecimalJSONParser().parse(BytesIO(body.encode()), "application/json")
    assert time.perf_counter() - started < 5
