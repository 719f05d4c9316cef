"""What a refund takes back of each contribution of the earning it names (its breakdown), and
of each basket line: the refund's own breakdown, which returns what it took to the rules'
budgets and keeps the next refund of the same earning exact."""

from collections import defaultdict
from decimal import Decimal

from cashback.errors import RefundExceedsPurchase
from cashback.models import EntryType, LedgerEntry
from core import money
from core.errors import InvalidInput
from programme.engine import RefundLine

ZERO = Decimal(0)


def _earlier_refunds(original: LedgerEntry) -> list[tuple[list | None, list | None]]:
    """The breakdowns and lines of the refunds of `original` so far (under the wallet's lock)."""
    return list(
        original.followers.filter(app_id=original.app_id, entry_type=EntryType.REFUND).values_list(
            "breakdown", "lines"
        )
    )


def _claimed_by_part(original: LedgerEntry, earlier: list) -> list[Decimal]:
    """What the refunds so far set out to take back of each contribution of `original`."""
    claimed = [ZERO for _ in original.breakdown or ()]
    for breakdown, _ in earlier:
        for part in breakdown or ():
            claimed[part["part"]] += Decimal(part["claimed"])
    return claimed


def breakdown_share(*, original: LedgerEntry, amount: Decimal, currency: str) -> list[Decimal]:
    """`amount` (what a refund of `original` sets out to take back) split over its
    contributions in proportion to what each has left (`money.allocate`)."""
    parts = original.breakdown or []
    claimed = _claimed_by_part(original, _earlier_refunds(original))
    left = [max(Decimal(p["amount"]) - c, ZERO) for p, c in zip(parts, claimed, strict=True)]
    return money.allocate(amount, left, currency)


def breakdown_share_of_lines(
    *, original: LedgerEntry, lines: list[RefundLine], currency: str
) -> list[Decimal]:
    """What refunding these lines of `original` sets out to take back of each of its
    contributions: of each contribution, the share of its matched amount the refunded lines
    are (rounded half-up), or its whole rest once every line it matched is refunded. A SKU
    on several lines is refunded line after line, in basket order.

    Raises `InvalidInput` when the earning was made without lines, and
    `RefundExceedsPurchase` (with `details.sku`) when a line would be refunded past its
    amount, or names no line of the earning."""
    basket = original.lines
    if basket is None:
        raise InvalidInput(
            "The request is invalid.",
            details={"lines": ["The earning was made without lines: refund it by refund_amount."]},
        )
    amounts = [Decimal(line["amount"]) for line in basket]
    earlier = _earlier_refunds(original)
    before: dict[str, Decimal] = defaultdict(Decimal)
    for _, refunded in earlier:
        for line in refunded or ():
            before[line["sku"]] += Decimal(line["amount"])
    now: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        now[line.sku] += line.amount
    for sku, amount in now.items():
        total = sum(
            (a for a, line in zip(amounts, basket, strict=True) if line["sku"] == sku), ZERO
        )
        if before[sku] + amount > total:
            raise RefundExceedsPurchase(
                "The refunds of this line would exceed its amount.",
                details={
                    "sku": sku,
                    "line_amount": money.quantize(total, currency),
                    "already_refunded": money.quantize(before[sku], currency),
                    "refundable": money.quantize(total - before[sku], currency),
                    "original_transaction_id": original.pk,
                },
            )
    after = {sku: before[sku] + now[sku] for sku in set(before) | set(now)}
    line_before, line_after = _by_line(basket, amounts, before), _by_line(basket, amounts, after)
    claimed = _claimed_by_part(original, earlier)
    shares = []
    for part, already in zip(original.breakdown or [], claimed, strict=True):
        indexes = part["lines"]
        matched = sum((amounts[i] for i in indexes), ZERO)
        refunded_now = sum((line_after[i] - line_before[i] for i in indexes), ZERO)
        rest = max(Decimal(part["amount"]) - already, ZERO)
        if refunded_now == 0 or matched == 0:
            shares.append(ZERO)
        elif sum((line_after[i] for i in indexes), ZERO) == matched:
            shares.append(rest)
        else:
            share = money.quantize(Decimal(part["amount"]) * refunded_now / matched, currency)
            shares.append(min(share, rest))
    return shares


def _by_line(basket: list[dict], amounts: list[Decimal], by_sku: dict) -> list[Decimal]:
    """How much of each line refunds of these amounts per SKU cover, line after line."""
    left = dict(by_sku)
    covered = []
    for line, amount in zip(basket, amounts, strict=True):
        take = min(amount, left.get(line["sku"], ZERO))
        left[line["sku"]] = left.get(line["sku"], ZERO) - take
        covered.append(take)
    return covered


def refund_breakdown(
    *, original: LedgerEntry, claims: list[Decimal], taken: Decimal, currency: str
) -> list[dict]:
    """A refund's breakdown: for each contribution of `original` it claims from, what it set
    out to take back (`claimed`) and, as a negative `amount`, its share of what it took
    (`taken`, split in proportion to the claims: the amounts add up to the entry's), and
    whether the contribution came out of its rule's budget (`budgeted`: what it took back of
    it returns there)."""
    taken_parts = money.allocate(taken, claims, currency)
    return [
        {
            "part": i,
            "source": part["source"],
            "rule_id": part["rule_id"],
            "name": part["name"],
            "amount": str(-took),
            "claimed": str(claim),
        }
        | ({"budgeted": True} if part.get("budgeted") else {})
        for i, (part, claim, took) in enumerate(
            zip(original.breakdown or [], claims, taken_parts, strict=True)
        )
        if claim > 0
    ]


def claim_settlement_returns(
    *, refund: LedgerEntry, before: Decimal, take: Decimal
) -> dict[int, Decimal]:
    """What settling `take` more of what `refund` could not take back (after `before` of it was
    settled) gives back to its rules' budgets, by rule. What a refund owes of each contribution
    is what it claimed less what it took; a settlement pays those parts one after the other,
    the budgeted ones first (a campaign is made whole before the card's base), each in the
    breakdown's order, so that settlements in any number return each budget exactly what was
    owed of it, however the amounts were split between them."""
    owed = [
        (part, Decimal(part["claimed"]) + Decimal(part["amount"]))
        for part in refund.breakdown or ()
    ]
    owed.sort(key=lambda item: not item[0].get("budgeted"))  # stable: the breakdown's order
    returns: dict[int, Decimal] = defaultdict(Decimal)
    start, end, position = before, before + take, ZERO
    for part, amount in owed:
        covered = min(end, position + amount) - max(start, position)
        if covered > 0 and part.get("budgeted"):
            returns[part["rule_id"]] += covered
        position += amount
    return dict(returns)
