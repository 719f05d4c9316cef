"""What the JSON parser reads, and what it refuses as a `400 parse_error` before anything runs."""

import pytest

from cashback.models import LedgerEntry
from core.api.fields import IdField, WholeNumberField

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
