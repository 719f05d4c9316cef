"""What an earn credits and why: the card's (or the member's tier's) base, then each earning
rule in priority order. Pure arithmetic over a basket, a moment and what the ledger knows of the
member; the limits that need the database (uses per member, budgets) are asked of `Counters`."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from cards.models import Card
from core import money
from programme.models import EarningRule, RuleKind, Tier

ZERO = Decimal(0)


@dataclass(frozen=True)
class Line:
    """A basket line. A purchase without lines is one unnamed line of its whole amount."""

    amount: Decimal
    sku: str | None = None
    category: str | None = None
    quantity: int = 1

    def as_dict(self) -> dict:
        return {
            "sku": self.sku,
            "category": self.category,
            "amount": str(self.amount),
            "quantity": self.quantity,
        }


@dataclass(frozen=True)
class RefundLine:
    """A refunded basket line: its SKU and how much of it."""

    sku: str
    amount: Decimal

    def as_dict(self) -> dict:
        return {"sku": self.sku, "amount": str(self.amount)}


@dataclass(frozen=True)
class Contribution:
    """One part of an earn's cashback: the base (`source` card or tier) or one rule's, with the
    basket lines (by index) it was earned on."""

    source: str
    rule_id: int | None
    name: str
    amount: Decimal
    lines: tuple[int, ...]
    # Taken from the rule's budget: what refunds take back of it returns there.
    budgeted: bool = False

    def as_dict(self) -> dict:
        """As the entry keeps it (`LedgerEntry.breakdown`)."""
        kept = {
            "source": self.source,
            "rule_id": self.rule_id,
            "name": self.name,
            "amount": str(self.amount),
            "lines": list(self.lines),
        }
        return kept | {"budgeted": True} if self.budgeted else kept


@dataclass(frozen=True)
class Breakdown:
    contributions: tuple[Contribution, ...]
    # The rate the base was computed at, and the tier that set it (None: the card's).
    percentage: Decimal
    tier: Tier | None = None
    # Rules that applied, for the caller to count (a use each).
    applied: tuple[EarningRule, ...] = field(default=())

    @property
    def total(self) -> Decimal:
        return sum((c.amount for c in self.contributions), ZERO)

    def as_list(self) -> list[dict]:
        return [c.as_dict() for c in self.contributions]


@dataclass(frozen=True)
class Member:
    """What the ledger knows of the member when it earns: its tier on the card and whether
    this would be its first earning there (a member not yet created: no tier, first)."""

    tier: Tier | None = None
    first_purchase: bool = True


class Counters(Protocol):
    """The limits that live in the database. An earn's counters lock what they take from (the
    rule's budget) and count what they grant; a quote's only read."""

    def uses_left(self, rule: EarningRule, at: datetime) -> int | None:
        """How many more earns of this member the rule may apply to in the period of `at`;
        None: no limit."""
        ...

    def grant(self, rule: EarningRule, wanted: Decimal) -> Decimal:
        """What of `wanted` the rule's budget still gives (all of it when `rule.budget` is
        None: what it gives is then counted against no budget)."""
        ...


def breakdown_for(
    *,
    card: Card,
    rules: Sequence[EarningRule],
    member: Member,
    purchase_amount: Decimal,
    lines: Sequence[Line],
    at: datetime,
    counters: Counters,
) -> Breakdown:
    """The earn's contributions: the base, `purchase_amount × percentage / 100` at the member's
    tier's percentage (else the card's), rounded half-up and capped at `cashback_max_amount`
    (rules are not capped by it, but a multiplier multiplies the capped base); then each
    active rule whose conditions hold at `at`, in
    `priority` order (then by id), each rounded half-up on its own and limited by its
    `max_per_transaction`, its uses per member and its budget. A rule that gives nothing does
    not apply; one that applies and is not stackable stops the rules after it. Their amounts
    add up to the cashback the earn credits."""
    tier = member.tier
    percentage = tier.cashback_percentage if tier is not None else card.cashback_percentage
    everything = tuple(range(len(lines)))
    base = money.cashback_for(purchase_amount, percentage, card.currency, card.cashback_max_amount)
    contributions = [
        Contribution(
            source="tier" if tier is not None else "card",
            rule_id=None,
            name=tier.name if tier is not None else card.name,
            amount=base,
            lines=everything,
        )
    ]
    applied: list[EarningRule] = []
    local = at.astimezone(card.zone)
    for rule in sorted(rules, key=lambda r: (r.priority, r.pk)):
        if not _holds(rule, local, member):
            continue
        matched = _matched_lines(rule, lines)
        if not matched:
            continue
        matched_amount = sum((lines[i].amount for i in matched), ZERO)
        if rule.min_purchase is not None and matched_amount < rule.min_purchase:
            continue
        amount = _rule_amount(rule, matched_amount, percentage, card)
        if rule.max_per_transaction is not None:
            amount = min(amount, rule.max_per_transaction)
        if amount <= 0:
            continue
        left = counters.uses_left(rule, at)
        if left is not None and left <= 0:
            continue
        amount = counters.grant(rule, amount)
        if amount <= 0:
            continue
        contributions.append(
            Contribution(
                source="rule",
                rule_id=rule.pk,
                name=rule.name,
                amount=amount,
                lines=matched,
                budgeted=rule.budget is not None,
            )
        )
        applied.append(rule)
        if not rule.stackable:
            break
    return Breakdown(
        contributions=tuple(contributions), percentage=percentage, tier=tier, applied=tuple(applied)
    )


def _holds(rule: EarningRule, local: datetime, member: Member) -> bool:
    """The rule's conditions of time and member at the local time of the earn."""
    if not rule.active:
        return False
    if rule.starts_at is not None and local < rule.starts_at:
        return False
    if rule.ends_at is not None and local >= rule.ends_at:
        return False
    if rule.days_of_week and local.isoweekday() not in rule.days_of_week:
        return False
    if rule.hours_from is not None and rule.hours_to is not None:
        now = local.time().replace(tzinfo=None)
        start, end = rule.hours_from, rule.hours_to
        # From 22:00 to 02:00 wraps past midnight: late evening or early morning.
        inside = start <= now < end if start < end else (now >= start or now < end)
        if not inside:
            return False
    if rule.tiers and (member.tier is None or member.tier.name not in rule.tiers):
        return False
    return not (rule.first_purchase_only and not member.first_purchase)


def _matched_lines(rule: EarningRule, lines: Sequence[Line]) -> tuple[int, ...]:
    """The lines the rule is earned on: those of its categories or its SKUs (either names a
    line), every line when it names neither."""
    if not rule.categories and not rule.skus:
        return tuple(range(len(lines)))
    categories, skus = set(rule.categories), set(rule.skus)
    return tuple(
        i
        for i, line in enumerate(lines)
        if (line.category is not None and line.category in categories)
        or (line.sku is not None and line.sku in skus)
    )


def _rule_amount(rule: EarningRule, matched: Decimal, percentage: Decimal, card: Card) -> Decimal:
    if rule.kind == RuleKind.MULTIPLIER and rule.factor is not None:
        # (f − 1) × the base cashback of the matched amount, as the base computes it (capped at
        # cashback_max_amount): "double cashback" never gives more than twice the base.
        base = money.cashback_for(matched, percentage, card.currency, card.cashback_max_amount)
        return money.quantize((rule.factor - 1) * base, card.currency)
    if rule.kind == RuleKind.BONUS_PERCENTAGE and rule.percentage is not None:
        return money.percentage_of(matched, rule.percentage, card.currency)
    if rule.kind == RuleKind.FIXED_BONUS and rule.amount is not None:
        return money.quantize(rule.amount, card.currency)
    return ZERO
