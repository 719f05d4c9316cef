"""Each ledger entry's webhook event, recorded in the entry's own transaction (an outbox): the
event exists if and only if the entry does, and the worker delivers it."""

from decimal import Decimal

from cards.models import Card
from cashback.models import EntryType, LedgerEntry, Lot
from cashback.serializers import (
    EarnResultSerializer,
    MovementEventSerializer,
    RedeemResultSerializer,
    RefundResultSerializer,
    ReverseResultSerializer,
    timestamp,
)
from core import money
from webhooks.models import EventDraft, EventType
from webhooks.services import event_draft, event_record

# Each entry type's event, and what renders its data: the operation's own answer where the API
# has one.
_EVENTS = {
    EntryType.EARNING: (EventType.EARNED, EarnResultSerializer),
    EntryType.REDEMPTION: (EventType.REDEEMED, RedeemResultSerializer),
    EntryType.REFUND: (EventType.REFUNDED, RefundResultSerializer),
    EntryType.REVERSAL: (EventType.REDEMPTION_REVERSED, ReverseResultSerializer),
    EntryType.ADJUSTMENT: (EventType.ADJUSTED, MovementEventSerializer),
    EntryType.RELEASE: (EventType.RELEASED, MovementEventSerializer),
    EntryType.EXPIRATION: (EventType.EXPIRED, MovementEventSerializer),
}


def entry_event_draft(*, entry: LedgerEntry, card: Card) -> EventDraft:
    """The entry's event, for the app's webhook endpoints, made from the entry complete: saved,
    or about to be saved by the statement that saves the event with it
    (`LedgerEntry.objects.append`)."""
    event_type, serializer = _EVENTS[EntryType(entry.entry_type)]
    data = serializer(entry, context={"card": card}).data
    return event_draft(app_id=entry.app_id, event_type=event_type, data=data)


def entry_answer(*, entry: LedgerEntry, card: Card) -> dict:
    """The answer of the operation that posted `entry` (its response's `data`), which its
    webhook event tells: rendered once for both when this request posted the entry with its
    event, rendered from the entry otherwise (a replay)."""
    if entry.webhook_event is not None:
        return entry.webhook_event.data
    _, serializer = _EVENTS[EntryType(entry.entry_type)]
    return serializer(entry, context={"card": card}).data


def expiring_event_record(*, lot: Lot, card: Card, member_id: int) -> None:
    """Records the `cashback.expiring` warning of a lot; once per lot, by the caller."""
    remaining: Decimal = lot.remaining
    event_record(
        app_id=lot.app_id,
        event_type=EventType.EXPIRING,
        data={
            "card_id": card.pk,
            "member_id": member_id,
            "amount": money.quantize(remaining, card.currency),
            "currency": card.currency,
            "expires_at": timestamp(lot.expires_at) if lot.expires_at else None,
            "original_transaction_id": lot.source_id,
        },
    )
