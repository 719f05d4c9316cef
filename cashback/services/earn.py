from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import Any

from django.db import IntegrityError, router, transaction
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
    budget_overrun,
    card_programme,
    member_tier_review,
    rule_budgets_lock,
    rule_uses_params,
    uses_of,
)


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

    A breakdown reads what is left of the rules' budgets with the member's facts, and the
    statement that saves the earning takes what it gave; when concurrent earns took from a
    budget in between, the database refuses the take and the earn runs again, whole, with the
    budgets locked before it reads them.
    """
    earn = partial(
        _earn,
        app=app,
        card=card,
        member_ref=member_ref,
        purchase_amount=purchase_amount,
        lines=lines,
        reference=reference,
        metadata=metadata,
        idempotency_record=idempotency_record,
    )
    try:
        return earn(budgets_locked=False)
    except _BudgetsMoved:
        return earn(budgets_locked=True)


@transaction.atomic(durable=True)
def _earn(
    *,
    app: App,
    card: Card,
    member_ref: MemberRef,
    purchase_amount: Decimal,
    lines: list[Line] | None,
    reference: str | None,
    metadata: dict | None,
    idempotency_record: IdempotencyRecord | None,
    budgets_locked: bool,
) -> Posted:
    """`cashback_earn` in one transaction; `budgets_locked`: the rules' budgets are read under
    their rows' locks (`programme.services.rule_budgets_lock`), not as they stood."""
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
            budgets_locked=budgets_locked,
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
    budgets_locked: bool,
) -> Posted:
    """An earn on a card with a programme: the member's wallet is found (or the member and an
    empty wallet created) and locked first, with what the programme asks of the member, so that
    the member's tier, first purchase and uses are read and counted one earn at a time; the
    statement that saves the earning counts its uses and takes from the budgets (after the
    wallet: the order refunds take them in too). The earn that crosses a tier's threshold is
    computed at the old tier; the member is moved up after it. Raises `_BudgetsMoved` when the
    database refuses a take (concurrent earns took from the budget since it was read)."""
    wallet, created, at, settled = _earn_wallet(
        app=app, card=card, programme=programme, member_ref=member_ref
    )
    member_id = wallet.member_id
    budgets_left = wallet.budgets_left
    if budgets_locked:
        budgets_left = rule_budgets_lock(app_id=app.pk, rule_ids=programme.budgeted)
    counters = EarnCounters(
        card=card, member_id=member_id, uses=uses_of(wallet.rule_uses), budgets_left=budgets_left
    )
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
        counters=counters,
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
    entry["rule_budgets"] = counters.budget_params()
    try:
        if not settled:
            # The wallet as its lock read it, with nothing to settle at the entry's time: the
            # entry's statement moves it.
            posted = entry_post(member_id=member_id, locked_wallet=wallet, at=at, **entry)
        else:
            # Settled under the lock, the wallet stays so but for the clock: a lot that came
            # due since (or the wallet's inactivity, ended) is settled before the credit.
            posted = entry_post(member_id=member_id, settled=True, at=at, **entry)
            for _ in range(SETTLE_AGAIN):
                if posted is not None:
                    break
                wallet_settle(wallet=wallet, card=card, as_of=at)
                posted = entry_post(member_id=member_id, settled=True, at=at, **entry)
    except IntegrityError as error:
        if budget_overrun(error):
            raise _BudgetsMoved() from error
        raise
    if posted is None:
        raise RuntimeError(f"Wallet {wallet.pk} stays unsettled under its lock.")
    if programme.tiers and not posted.replayed:
        member_tier_review(
            card=card,
            programme=programme,
            member_id=member_id,
            spend=qualifying_spend(wallet_id=wallet.pk, card=card, at=at),
            at=at,
            upgrade_only=True,
        )
    return posted


class _BudgetsMoved(Exception):
    """Not an error: how an earn whose budgets moved under it leaves its transaction."""


def _earn_wallet(
    *, app: App, card: Card, programme: Programme, member_ref: MemberRef
) -> tuple[Wallet, bool, datetime, bool]:
    """The member's wallet on the card, locked, settled and read with what the programme needs
    to know of the member (`Wallet.objects.programme_facts`); whether the member was created
    (a member unknown by email and phone is created with an empty wallet); the earn's time,
    taken once the lock is held and no earlier than the wallet's last entry; and whether the
    wallet was settled (it had lots due or expired at that time: then what the lock read of its
    balances is past). One statement locks and reads, unless the wallet changed while it
    waited (or just before): then a second reads again, under the lock."""
    member_id = member_ref.member_id
    if member_id is None:
        member = member_match(app=app, email=member_ref.email, phone=member_ref.phone)
        member_id = None if member is None else member.pk
    created = False

    def locked(member_id: int) -> tuple[Wallet | None, datetime]:
        wallet = Wallet.objects.programme_facts(
            app_id=app.pk,
            card_id=card.pk,
            member_id=member_id,
            budgeted=programme.budgeted,
            lock=True,
            using=router.db_for_write(Wallet),
        )
        # The earn's time is once the lock is held: the statement may have waited for it behind
        # a request that changed nothing.
        return wallet, timezone.now()

    wallet, at = (None, timezone.now()) if member_id is None else locked(member_id)
    if wallet is None:
        # A member without a wallet on the card, a new member, or an id that is not the
        # app's (`NotFound`). A new wallet is locked by its insert; one created meanwhile by a
        # concurrent request is locked by the read that follows.
        ref = member_ref if member_id is None else MemberRef(member_id=member_id)
        member, created, _ = member_wallet_create(
            app=app, card=card, ref=ref, amount=ZERO, pending_amount=ZERO
        )
        member_id = member.pk
        wallet, at = locked(member_id)
    if wallet is not None and not wallet.fresh:
        wallet, at = locked(wallet.member_id)
    if wallet is None:  # wallets are never deleted
        raise Wallet.DoesNotExist(f"The wallet of member {member_id} is gone.")
    # The entry's time, no earlier than the wallet's last entry (`LedgerEntry.objects.append`),
    # is the earn's: its rules' time windows and periods go by it, so that a member's earns on
    # the card are counted in time order whatever the clocks of the servers that took them.
    if wallet.last_entry_at is not None:
        at = max(at, wallet.last_entry_at)
    due = wallet_due(wallet, at)
    wallet_settle(wallet=wallet, card=card, due=due, as_of=at)
    if due:  # its settling wrote entries: the earn comes after them
        at = max(timezone.now(), at)
    return wallet, created, at, due
