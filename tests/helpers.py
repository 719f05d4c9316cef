import re
import threading
from datetime import datetime
from decimal import Decimal

from django.utils.dateparse import parse_datetime

from apps_auth.models import App
from cards.models import Card
from cashback.models import LedgerEntry, Wallet
from cashback.services import cashback_earn
from members.models import Member
from members.services import MemberRef

_ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


class IsoTimestamp:
    """Equal to any ISO 8601 UTC timestamp string, for whole-body assertions."""

    def __eq__(self, other):
        return isinstance(other, str) and bool(_ISO_UTC.match(other))

    def __repr__(self):
        return "<ISO timestamp>"


def instant(text: str) -> datetime:
    """A timestamp of an answer, as a datetime."""
    parsed = parse_datetime(text)
    assert parsed is not None, f"not a timestamp: {text!r}"
    return parsed


class AnyInt:
    def __eq__(self, other):
        return isinstance(other, int) and not isinstance(other, bool)

    def __repr__(self):
        return "<int>"


def error(code: str, message=None, details=None) -> dict:
    """The error envelope; `message` None matches any message, `details` None matches {}."""

    class AnyText:
        def __eq__(self, other):
            return isinstance(other, str) and bool(other)

    return {
        "success": False,
        "error": {
            "code": code,
            "message": message if message is not None else AnyText(),
            "details": details if details is not None else {},
        },
    }


def code_in(text: str) -> str:
    """The 6-digit one-time code in a message."""
    match = re.search(r"\b(\d{6})\b", text)
    assert match is not None, f"no code in {text!r}"
    return match.group(1)


def give_balance(*, app: App, card: Card, member: Member, purchase: str) -> LedgerEntry:
    """Credits the member through the earn service, as a merchant's purchase would."""
    posted = cashback_earn(
        app=app,
        card=card,
        member_ref=MemberRef(member_id=member.pk),
        purchase_amount=Decimal(purchase),
    )
    return posted.entry


def earn(api, card: Card, member: Member, purchase: str, **extra) -> dict:
    """An earn through the API, which must succeed; its answer's data."""
    body = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": purchase, **extra}
    response = api.post("/api/v1/cashback/cashback/earn", body)
    assert response.status_code == 200, response.json()
    return response.json()["data"]


def balance(api, card: Card, member: Member) -> dict:
    """The member's balance on the card through the API; its answer's data."""
    response = api.get(
        "/api/v1/cashback/cashback/balance", {"card_id": card.pk, "member_id": member.pk}
    )
    assert response.status_code == 200, response.json()
    return response.json()["data"]


def balance_of(member: Member, card: Card) -> Decimal:
    wallet = Wallet.objects.filter(member=member, card=card).first()
    return wallet.balance if wallet else Decimal(0)


def counts() -> tuple[int, int, int]:
    """Row counts that a refused request must leave as they were."""
    return Member.objects.count(), Wallet.objects.count(), LedgerEntry.objects.count()


def concurrently(count: int, request) -> list:
    """Runs `request(i)` in `count` threads released at once; returns the responses in order."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def work(i):
        from django.db import connections

        try:
            barrier.wait(timeout=30)
            results[i] = request(i)
        except Exception as exc:  # surfaced by the assertion below
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    return results
