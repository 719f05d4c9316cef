from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.utils import timezone

from apps_auth.models import App
from cards.models import Card
from cashback.models import Wallet
from cashback.services.earn import cashback_of, earn_check
from members.models import Member
from members.selectors import member_get, member_match
from members.services import MemberRef
from programme.engine import Breakdown, Line, breakdown_for
from programme.engine import Member as MemberFacts
from programme.models import Tier
from programme.services import (
    EarnCounters,
    card_programme,
    member_tier_get,
    rule_budgets_left,
    uses_of,
)


@dataclass(frozen=True)
class Quote:
    breakdown: Breakdown
    held: bool
    member_id: int | None

    @property
    def cashback(self) -> Decimal:
        return self.breakdown.total

    @property
    def tier(self) -> Tier | None:
        return self.breakdown.tier


def cashback_quote(
    *,
    app: App,
    card: Card,
    member_ref: MemberRef,
    purchase_amount: Decimal,
    lines: list[Line] | None = None,
    at: datetime | None = None,
) -> Quote:
    """What an earn of this body would credit at `at` (default now), and why, writing nothing:
    no member is created, no use counted, no budget taken, and no row locked (the member's
    tier, first purchase, uses and the rules' budgets left, in one statement, are read as they
    stand). Raises what an
    earn raises before it writes: `CardInactive`, `InvalidInput`, `BelowMinimumPurchase`,
    `NotFound` (an unknown member id), `MemberConflict`."""
    earn_check(card=card, purchase_amount=purchase_amount, lines=lines)
    at = at or timezone.now()
    programme = card_programme(card)
    member: Member | None
    if member_ref.member_id is not None:
        member = member_get(app=app, member_id=member_ref.member_id)
    else:
        member = member_match(app=app, email=member_ref.email, phone=member_ref.phone)
    member_id = None if member is None else member.pk
    wallet = None
    if member_id is not None and not programme.empty:
        wallet = Wallet.objects.programme_facts(
            app_id=app.pk,
            card_id=card.pk,
            member_id=member_id,
            budgeted=programme.budgeted,
        )
    budgets_left = None if wallet is None else wallet.budgets_left
    if budgets_left is None and programme.budgeted:
        budgets_left = rule_budgets_left(app_id=app.pk, rule_ids=programme.budgeted)
    tier_id = None if wallet is None else wallet.member_tier_id
    if wallet is None and member_id is not None and programme.tiers:
        row = member_tier_get(card=card, member_id=member_id)  # set by staff before an earn
        tier_id = None if row is None else row.tier_id
    tier = programme.member_tier(tier_id) if programme.tiers else None
    breakdown = breakdown_for(
        card=card,
        rules=programme.rules,
        member=MemberFacts(tier=tier, first_purchase=wallet is None or not wallet.has_earned),
        purchase_amount=purchase_amount,
        lines=lines or [Line(amount=purchase_amount)],
        at=at,
        counters=EarnCounters(
            card=card,
            member_id=member_id,
            uses=uses_of(None if wallet is None else wallet.rule_uses),
            budgets_left=budgets_left,
        ),
    )
    cashback_of(breakdown)
    return Quote(breakdown=breakdown, held=card.cashback_holding_days > 0, member_id=member_id)
