from contextlib import nullcontext
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import router, transaction
from django.utils import timezone

from apps_auth.models import App, IdempotencyRecord
from cards.models import Card
from cards.selectors import card_check_active
from cashback.errors import BelowMinimumPurchase
from cashback.models import EntryType, Wallet
from cashback.selectors import qualifying_spend
from cashback.services.ledger import (
    ZERO,
    Operation,
    Posted,
    amount_check_places,
    entry_append,
    entry_post,
    member_ref_digest,
    member_wallet_create,
    wallet_due,
    wallet_open,
    wallet_settle,
)
from core import money
from core.fingerprint import digest
from members.selectors import member_match
from members.services import MemberRef
from programme.engine import Breakdown, Line, breakdown_for
from programme.engine import Member as MemberFacts
from programme.services import (
    EarnCounters,
    Programme,
    card_programme,
    member_tier_review,
    rule_uses_params,
    uses_of,
)


@transaction.atomic(durable=True)
def cashback_earn(
    *,
    app: App,
    card: Card,
    member_ref: MemberRef,
    purchase_amount: Decimal,
    lines: list[Line] | None = None,
    reference: str | None = None,
    metadata: dict | None = None,
    idempotency_record: IdempotencyRecord | None = None,
) -> Posted:
    """Credits the purchase's cashback to the member's wallet: to its spendable balance, or to
    its pending balance on a card that holds cashback. Either way the earning opens a lot.
    The cashback is `purchase_amount × percentage / 100` (half-up, capped) on a card without a
    programme; on one with earning rules or tiers, the programme's breakdown
    (`programme.engine.breakdown_for`), computed under the member's wallet lock with what the
    ledger knows of the member, which counts the rules' uses and takes from their budgets. The
    entry keeps its breakdown and its basket `lines` (each given line's amount within the
    currency's places; they add up to the purchase, as the serializer checked).

    Creates the member (with the name, the email and the phone given) when neither the email
    nor the phone is the app's; the entry records that it did. Nothing is written unless the whole
    earn succeeds; a retry (same key or reference, same inputs) replays the first entry. Raises
    `CardInactive`, `InvalidInput` (decimal places), `BelowMinimumPurchase` (under the card's
    minimum, or too small to earn a minor unit), `NotFound` (unknown member id),
    `MemberConflict` (the email and the phone name two members), `DuplicateReference` and
    `IdempotencyKeyReused`.
    """
    earn_check(card=card, purchase_amount=purchase_amount, lines=lines)
    operation = Operation(
        card=card,
        entry_type=EntryType.EARNING,
        reference=reference,
        idempotency_record=idempotency_record,
        request_fingerprint=digest(
            {
                "member": member_ref_digest(member_ref),
                "purchase_amount": purchase_amount,
                "metadata": metadata or {},
            }
            | ({} if lines is None else {"lines": [_line_digest(line) for line in lines]})
        ),
    )
    replay = operation.replay()
    if replay is not None:
        return replay

    programme = card_programme(card)
    basket = lines or [Line(amount=purchase_amount)]
    if not programme.empty:
        return _programme_earn(
            app=app,
            card=card,
            programme=programme,
            member_ref=member_ref,
            purchase_amount=purchase_amount,
            basket=basket,
            lines=lines,
            operation=operation,
            metadata=metadata,
        )
    breakdown = breakdown_for(
        card=card,
        rules=(),
        member=MemberFacts(),
        purchase_amount=purchase_amount,
        lines=basket,
        at=timezone.now(),
        counters=EarnCounters(card=card, member_id=None),
    )
    entry = _earning(
        operation=operation,
        card=card,
        breakdown=breakdown,
        purchase_amount=purchase_amount,
        lines=lines,
        metadata=metadata,
    )
    # A member with a wallet on the card is found (by id, email or phone) and credited in one
    # statement (the wallet's existence proves the member is the app's), unless a lot of the
    # wallet is due for release or past its expiry; otherwise the member is found, or
    # created, first, and an existing wallet locked and settled before the credit. Named by
    # both email and phone, the member is matched first: the two must not name two members.
    if member_ref.by_email_and_phone:
        member = member_match(app=app, email=member_ref.email, phone=member_ref.phone)
        if member is not None:
            member_ref = MemberRef(member_id=member.pk)
    posted = entry_post(member_ref=member_ref, settled=True, **entry)
    if posted is not None:
        return posted
    # The member's first entry on this card, a new member, or a wallet to settle first.
    member, created, wallet = member_wallet_create(
        app=app,
        card=card,
        ref=member_ref,
        amount=entry["amount"],
        pending_amount=entry["pending_amount"],
    )
    if wallet is None:  # the member had a wallet on the card (maybe just now, concurrently)
        wallet = wallet_open(app=app, card=card, member=member)
        return entry_append(wallet=wallet, member_created=created, **entry)
    posted = entry_post(member_id=member.pk, member_created=created, new_wallet=wallet, **entry)
    if posted is None:  # wallets are never deleted
        raise Wallet.DoesNotExist(f"The wallet of member {member.pk} is gone.")
    return posted


def _line_digest(line: Line) -> list:
    # Amounts as decimals: 12, 12.0 and "12.000" are one amount to a retry.
    return [line.sku, line.category, line.amount, line.quantity]


def earn_check(*, card: Card, purchase_amount: Decimal, lines: list[Line] | None) -> None:
    """What an earn (and its quote) refuses before it reads anything: an inactive card
    (`CardInactive`), amounts with more places than the currency's (`InvalidInput`), a purchase
    under the card's minimum (`BelowMinimumPurchase`)."""
    card_check_active(card)
    amount_check_places(field="purchase_amount", amount=purchase_amount, currency=card.currency)
    for line in lines or ():
        amount_check_places(field="lines", amount=line.amount, currency=card.currency)
    if purchase_amount < card.cashback_min_amount:
        raise BelowMinimumPurchase(
            details={"cashback_min_amount": money.quantize(card.cashback_min_amount, card.currency)}
        )


def cashback_of(breakdown: Breakdown) -> Decimal:
    """An earn's cashback; raises `BelowMinimumPurchase` when it is nothing."""
    cashback = breakdown.total
    if cashback == 0:
        raise BelowMinimumPurchase("The purchase is too small to earn any cashback.")
    return cashback


def _earning(
    *,
    operation: Operation,
    card: Card,
    breakdown: Breakdown,
    purchase_amount: Decimal,
    lines: list[Line] | None,
    metadata: dict | None,
) -> dict[str, Any]:
    """An earning's fields: its cashback (`cashback_of`) pending on a card that holds cashback
    (its lot is released `cashback_holding_days` later), spendable otherwise; its breakdown and
    its basket."""
    cashback = cashback_of(breakdown)
    held = card.cashback_holding_days > 0
    return {
        "operation": operation,
        "amount": ZERO if held else cashback,
        "pending_amount": cashback if held else ZERO,
        "purchase_amount": purchase_amount,
        "cashback_percentage": breakdown.percentage,
        "metadata": metadata or {},
        "breakdown": breakdown.as_list(),
        "lines": None if lines is None else [line.as_dict() for line in lines],
    }


# How often an earn settles its locked wallet again when the clock made a lot due meanwhile:
# once is enough but for a lot coming due between the settling and the credit again.
SETTLE_AGAIN = 3


def _programme_earn(
    *,
    app: App,
    card: Card,
    programme: Programme,
    member_ref: MemberRef,
    purchase_amount: Decimal,
    basket: list[Line],
    lines: list[Line] | None,
    operation: Operation,
    metadata: dict | None,
) -> Posted:
    """An earn on a card with a programme: the member's wallet is found (or the member and an
    empty wallet created) and locked first, so that the member's tier, first purchase and uses
    are read and counted one earn at a time, and budgets are taken after the wallet (the order
    refunds take them in too). The earn that crosses a tier's threshold is computed at the old
    tier; the member is moved up after it."""
    wallet, created, at = _earn_wallet(
        app=app, card=card, programme=programme, member_ref=member_ref
    )
    member_id = wallet.member_id
    try:
        # A retry that waited for the wallet behind the request it repeats finds that
        # request's entry only when it appends its own: what its breakdown took from the
        # budgets is rolled back with it.
        with transaction.atomic() if operation.may_collide else nullcontext():
            breakdown = breakdown_for(
                card=card,
                rules=programme.rules,
                member=MemberFacts(
                    tier=programme.member_tier(wallet.member_tier_id),
                    first_purchase=not wallet.has_earned,
                ),
                purchase_amount=purchase_amount,
                lines=basket,
                at=at,
                counters=EarnCounters(
                    card=card, member_id=member_id, uses=uses_of(wallet.rule_uses)
                ),
            )
            entry = _earning(
                operation=operation,
                card=card,
                breakdown=breakdown,
                purchase_amount=purchase_amount,
                lines=lines,
                metadata=metadata,
            )
            entry["member_created"] = created
            entry["rule_uses"] = rule_uses_params(
                card=card, member_id=member_id, rules=breakdown.applied, at=at
            )
            # Settled under the lock, the wallet stays so but for the clock: a lot that came
            # due since (or the wallet's inactivity, ended) is settled before the credit.
            posted = entry_post(member_id=member_id, settled=True, **entry)
            for _ in range(SETTLE_AGAIN):
                if posted is not None:
                    break
                wallet_settle(wallet=wallet, card=card)
                posted = entry_post(member_id=member_id, settled=True, **entry)
            if posted is None:
                raise RuntimeError(f"Wallet {wallet.pk} stays unsettled under its lock.")
            if posted.replayed:
                raise _Replayed(posted)
    except _Replayed as replayed:
        return replayed.posted
    if programme.tiers:
        member_tier_review(
            card=card,
            programme=programme,
            member_id=member_id,
            spend=qualifying_spend(wallet_id=wallet.pk, card=card, at=at),
            at=at,
            upgrade_only=True,
        )
    return posted


class _Replayed(Exception):
    """Not an error: how a replay leaves the savepoint of the earn it repeats."""

    def __init__(self, posted: Posted):
        self.posted = posted


def _earn_wallet(
    *, app: App, card: Card, programme: Programme, member_ref: MemberRef
) -> tuple[Wallet, bool, datetime]:
    """The member's wallet on the card, locked, settled and read with what the programme needs
    to know of the member (`Wallet.objects.programme_facts`); whether the member was created
    (a member unknown by email and phone is created with an empty wallet); and the earn's
    time, taken once the lock is held."""
    member_id = member_ref.member_id
    if member_id is None:
        member = member_match(app=app, email=member_ref.email, phone=member_ref.phone)
        member_id = None if member is None else member.pk
    created = False
    locked = member_id is not None and Wallet.objects.lock_of_member(
        app_id=app.pk, card_id=card.pk, member_id=member_id
    )
    if not locked or member_id is None:
        # A member without a wallet on the card, a new member, or an id that is not the
        # app's (`NotFound`). A new wallet is locked by its insert.
        ref = member_ref if member_id is None else MemberRef(member_id=member_id)
        member, created, new = member_wallet_create(
            app=app, card=card, ref=ref, amount=ZERO, pending_amount=ZERO
        )
        member_id = member.pk
        if new is None:  # created meanwhile by a concurrent request: locked now
            Wallet.objects.lock_of_member(app_id=app.pk, card_id=card.pk, member_id=member_id)
    at = timezone.now()
    limited = [rule.pk for rule in programme.rules if rule.max_uses_per_member is not None]
    wallet = Wallet.objects.programme_facts(
        app_id=app.pk,
        card_id=card.pk,
        member_id=member_id,
        rule_ids=limited,
        at=at,
        using=router.db_for_write(Wallet),
    )
    if wallet is None:  # wallets are never deleted
        raise Wallet.DoesNotExist(f"The wallet of member {member_id} is gone.")
    wallet_settle(wallet=wallet, card=card, due=wallet_due(wallet, at))
    return wallet, created, at
