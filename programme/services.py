"""The programme's writes: rules and tiers as merchants change them, what an earn takes from a
rule (a use, a share of its budget), members' tiers as their spend moves them."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import cached_property

from django.conf import settings
from django.db import IntegrityError, router, transaction
from django.db.models import F, Func, Sum, Value
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from cards.models import Card
from core import money
from core.api.fields import timestamp
from core.errors import InvalidInput, NotFound
from core.generations import GenerationCache, configuration_changed
from core.rows import array_text, prepared_cursor
from programme.models import EarningRule, MemberTier, Period, RuleUse, Tier, TierReason
from programme.queries import RULE_BUDGETS_LOCK
from webhooks.models import EventType
from webhooks.services import event_record

EVER = date(1, 1, 1)
ZERO = Decimal(0)


@dataclass(frozen=True)
class Programme:
    """A card's active rules, in the order they apply, and its tiers, lowest first."""

    rules: tuple[EarningRule, ...]
    tiers: tuple[Tier, ...]

    @property
    def empty(self) -> bool:
        return not self.rules and not self.tiers

    @cached_property
    def budgeted(self) -> list[int]:
        """The rules with a budget: those whose budget left an earn reads."""
        return [rule.pk for rule in self.rules if rule.budget is not None]

    def tier(self, tier_id: int | None) -> Tier | None:
        return next((t for t in self.tiers if t.pk == tier_id), None)

    def member_tier(self, tier_id: int | None) -> Tier | None:
        """The tier a member whose tier row names `tier_id` (None: none) earns at: that tier,
        else one at threshold 0, which every member is in from the start."""
        return self.tier(tier_id) or self.supported(Decimal(0))

    def supported(self, spend: Decimal) -> Tier | None:
        """The highest tier whose threshold `spend` reaches."""
        reached = [t for t in self.tiers if spend >= t.threshold]
        return reached[-1] if reached else None


_programmes: GenerationCache[int, Programme] = GenerationCache(
    10_000, ttl=settings.API_KEY_CACHE_SECONDS
)


def card_programme(card: Card) -> Programme:
    """The card's programme, from this process's cache while the configuration generation
    holds (a rule or tier saved anywhere moves it: `programme_changed`)."""

    def load() -> Programme:
        rules = EarningRule.objects.filter(app_id=card.app_id, card_id=card.pk, active=True)
        tiers = Tier.objects.filter(app_id=card.app_id, card_id=card.pk)
        return Programme(
            rules=tuple(rules.order_by("priority", "id")),
            tiers=tuple(tiers.order_by("threshold", "id")),
        )

    return _programmes.get(card.pk, load)


def programme_cache_clear() -> None:
    """Forgets every card's programme this process holds."""
    _programmes.clear()


@receiver(post_save, sender=EarningRule)
@receiver(post_delete, sender=EarningRule)
@receiver(post_save, sender=Tier)
@receiver(post_delete, sender=Tier)
def programme_changed(**kwargs) -> None:
    """Every process reads a card's programme again once a change to it is committed."""
    _programmes.clear()
    configuration_changed()


def period_start(per: str | None, local: datetime) -> date:
    """The first day, in the card's zone, of the calendar period of `local`: its day, its ISO
    week (from Monday), its month, its year; `ever` (and no period) one bucket for all time."""
    day = local.date()
    if per == Period.DAY:
        return day
    if per == Period.WEEK:
        return day - timedelta(days=day.isoweekday() - 1)
    if per == Period.MONTH:
        return day.replace(day=1)
    if per == Period.YEAR:
        return day.replace(month=1, day=1)
    return EVER


def _bucket(rule: EarningRule, card: Card, at: datetime) -> tuple[str, date]:
    per = rule.per if rule.max_uses_per_member is not None and rule.per else Period.EVER
    return per, period_start(per, at.astimezone(card.zone))


def rule_budgets_lock(*, app_id: int, rule_ids: list[int]) -> dict[int, Decimal]:
    """What is left of each of these rules' budgets, each rule locked until the transaction
    ends (`programme.queries.RULE_BUDGETS_LOCK`); the caller holds the member's wallet locked
    first."""
    with prepared_cursor(router.db_for_write(EarningRule)) as cursor:
        cursor.execute(RULE_BUDGETS_LOCK, {"app": app_id, "rules": array_text(rule_ids)})
        return dict(cursor.fetchall())


def rule_budgets_left(*, app_id: int, rule_ids: list[int]) -> dict[int, Decimal]:
    """What is left of each of these rules' budgets, as it stands (a quote's read)."""
    rows = EarningRule.objects.filter(app_id=app_id, pk__in=rule_ids, budget__isnull=False)
    return {rule.pk: rule.budget_remaining or ZERO for rule in rows.only("budget", "budget_spent")}


def budget_overrun(error: IntegrityError) -> bool:
    """Whether the database refused a take from a budget (the earning's statement,
    `cashback.queries.ENTRY_APPEND`)."""
    diag = getattr(error.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == "rule_budget_spent_within"


class EarnCounters:
    """An earn's limits, under the member's wallet lock: the member's uses and what is left of
    the rules' budgets, as the caller read them with its wallet
    (`cashback.models.PROGRAMME_FACTS`), or the budgets under their rules' locks
    (`rule_budgets_lock`). What the breakdown grants of a budget is taken by the statement that
    saves the earning (`budget_params`); a quote's counters are the same and take nothing."""

    def __init__(
        self,
        *,
        card: Card,
        member_id: int | None,
        uses: "MemberUses | None" = None,
        budgets_left: dict[int, Decimal] | None = None,
    ):
        self.card = card
        self.member_id = member_id
        self._uses = uses
        self._budgets_left = budgets_left or {}
        self.taken: dict[int, Decimal] = {}

    def uses_left(self, rule: EarningRule, at: datetime) -> int | None:
        if rule.max_uses_per_member is None:
            return None
        if self.member_id is None:
            return rule.max_uses_per_member
        if self._uses is None:
            raise ValueError("A member's counters need the uses read with its wallet.")
        per, start = _bucket(rule, self.card, at)
        if self._uses.pers.get(rule.pk, per) != per:
            # The rule's period changed since this process read the rule: nothing until it
            # reads it again (at its next request), rather than more than the limit.
            return 0
        if per == Period.EVER:
            # Every use the member made of the rule, in whatever period it was counted in
            # while the rule's limit was per day, week, month or year.
            return rule.max_uses_per_member - self._uses.totals.get(rule.pk, 0)
        latest = self._uses.latest.get((rule.pk, per))
        if latest is None or latest[0] < start:
            return rule.max_uses_per_member
        if latest[0] > start:
            # Counted in a later period than this earn's: the card's zone moved the calendar
            # back. Nothing more until that period is this earn's, rather than more than the
            # limit.
            return 0
        return rule.max_uses_per_member - latest[1]

    def grant(self, rule: EarningRule, wanted: Decimal) -> Decimal:
        if rule.budget is None:
            return wanted
        # Not read: its budget lifted (or the rule gone) since this process read it; it gives
        # nothing this time rather than what no budget would have allowed.
        left = self._budgets_left.get(rule.pk, ZERO)
        granted = max(min(wanted, left), ZERO)
        if granted > 0:
            self.taken[rule.pk] = self.taken.get(rule.pk, ZERO) + granted
        return granted

    def budget_params(self) -> dict | None:
        """The parameters of the take from budgets in the earning's statement
        (`cashback.queries.ENTRY_APPEND`) for what the breakdown granted (None: nothing of any
        budget)."""
        if not self.taken:
            return None
        return {
            "budget_rules": array_text(self.taken),
            "budget_taken": array_text(self.taken.values()),
        }


@dataclass(frozen=True)
class MemberUses:
    """A member's uses of the rules that limit them: for each rule, the latest period of the
    rule's kind its uses were counted in (its first day) and its uses there; and each rule's
    uses in all. A member's earns on a card are counted in time order (an earn's time is never
    before the wallet's last entry's), so the period an earn counts in is never before the
    latest."""

    latest: dict[tuple[int, str], tuple[date, int]]
    totals: dict[int, int]
    # Each rule's period, as the rule's row had it when the uses were read.
    pers: dict[int, str]


def uses_of(rows: list[dict] | None) -> MemberUses:
    """A member's uses as the earn's lock of its wallet reads them
    (`cashback.models.LOCK_FOR_PROGRAMME`): `[{"rule", "per", "start", "uses", "total"}]`, for
    each of the card's rules that limit uses, its period, the latest period of that kind it was
    counted in (`start` null: none) and its uses in all (null: none)."""
    rows = rows or []
    return MemberUses(
        latest={
            (row["rule"], row["per"]): (date.fromisoformat(row["start"]), row["uses"])
            for row in rows
            if row["start"] is not None
        },
        totals={row["rule"]: row["total"] or 0 for row in rows},
        pers={row["rule"]: row["per"] for row in rows},
    )


# The periods a use is counted in: `ever`, for every rule (a rule's uses in all); and, for a
# rule that limits uses, its day, week, month and year too, so that a limit keeps counting
# what was used in its period when marketing changes the rule's period.
PERIODS = (Period.DAY, Period.WEEK, Period.MONTH, Period.YEAR)


def rule_uses_params(
    *, card: Card, member_id: int, rules: tuple[EarningRule, ...], at: datetime
) -> dict | None:
    """The parameters of the count of uses in an earning's statement
    (`cashback.queries.ENTRY_APPEND`) for an earn of the member that applied `rules`
    (None: none applied): one use of each `ever`, and, for a rule that limits uses, in each of
    the `PERIODS` of `at` in the card's zone. The caller holds the member's wallet locked."""
    if not rules:
        return None
    local = at.astimezone(card.zone)
    counted = [
        (rule.pk, per, period_start(per, local))
        for rule in rules
        for per in (
            (*PERIODS, Period.EVER) if rule.max_uses_per_member is not None else (Period.EVER,)
        )
    ]
    return {
        "uses_member": member_id,
        "uses_rules": array_text(rule_id for rule_id, _, _ in counted),
        "uses_pers": array_text(per for _, per, _ in counted),
        "uses_starts": array_text(start for _, _, start in counted),
    }


def rule_budget_return(*, app_id: int, returns: dict[int, Decimal]) -> None:
    """Gives back to each rule's budget what a refund took back of what it gave from it. The
    rules' rows are locked in the order earns take them (priority, then id), after the
    wallet's, so that a refund and an earn never wait for each other's rules."""
    given = {rule_id: amount for rule_id, amount in returns.items() if amount > 0}
    order = EarningRule.objects.filter(app_id=app_id, pk__in=given).order_by("priority", "pk")
    for rule_id in order.values_list("pk", flat=True):
        EarningRule.objects.filter(app_id=app_id, pk=rule_id).update(
            budget_spent=F("budget_spent") - given[rule_id]
        )


def rule_uses(rules: Iterable[EarningRule]) -> dict[int, int]:
    """How many earns each rule applied to: its members' uses `ever` (on the index led by the
    app, whatever apps the rules are of)."""
    rules = list(rules)
    rows = (
        RuleUse.objects.filter(
            app_id__in={rule.app_id for rule in rules},
            rule_id__in=[rule.pk for rule in rules],
            per=Period.EVER,
        )
        .values("rule_id")
        .annotate(total=Sum("uses"))
        .values_list("rule_id", "total")
    )
    return dict(rows)


def member_tier_get(*, card: Card, member_id: int) -> MemberTier | None:
    return MemberTier.objects.filter(
        app_id=card.app_id, card_id=card.pk, member_id=member_id
    ).first()


def member_tier_review(
    *,
    card: Card,
    programme: Programme,
    member_id: int,
    spend: Decimal,
    at: datetime,
    upgrade_only: bool,
) -> MemberTier | None:
    """Moves the member to the tier its qualifying `spend` supports: up at once (the earn that
    crosses a threshold was computed at the old tier; the next earns use the new one), down only
    once the reached tier's retention has ended (`upgrade_only`: never down, as after an earn or
    a refund). A tier reached, or supported again at its review, is kept `tier_retention_days`
    from then. Each change records `member.tier_changed`. The caller holds the member's wallet
    on the card locked. Returns the member's tier row when it changed."""
    current = member_tier_get(card=card, member_id=member_id)
    now_tier = programme.tier(current.tier_id) if current is not None else None
    supported = programme.supported(spend)
    retention = timedelta(days=card.tier_retention_days)
    rank = _rank(programme)
    if rank(supported) > rank(now_tier):
        return _tier_set(
            card=card, row=current, member_id=member_id, old=now_tier, new=supported,
            reason=TierReason.UPGRADE, at=at, retained_until=at + retention,
        )  # fmt: skip
    if upgrade_only or current is None or now_tier is None:
        return None
    if current.retained_until is not None and current.retained_until > at:
        return None
    if rank(supported) == rank(now_tier):
        # Supported again: kept another period, without an event (the tier did not change).
        MemberTier.objects.filter(pk=current.pk).update(retained_until=at + retention)
        return None
    return _tier_set(
        card=card, row=current, member_id=member_id, old=now_tier, new=supported,
        reason=TierReason.DOWNGRADE, at=at,
        retained_until=None if supported is None else at + retention,
    )  # fmt: skip


def _rank(programme: Programme):
    order = {t.pk: i for i, t in enumerate(programme.tiers)}
    return lambda tier: -1 if tier is None else order.get(tier.pk, -1)


def _tier_set(
    *,
    card: Card,
    row: MemberTier | None,
    member_id: int,
    old: Tier | None,
    new: Tier | None,
    reason: str,
    at: datetime,
    retained_until: datetime | None,
    note: str = "",
) -> MemberTier:
    if row is None:
        row = MemberTier(app_id=card.app_id, card_id=card.pk, member_id=member_id)
    row.tier = new
    row.reached_at = at if new is not None else None
    row.retained_until = retained_until
    row.reason = reason
    row.note = note
    row.save()
    event_record(
        app_id=card.app_id,
        event_type=EventType.TIER_CHANGED,
        data={
            "member_id": member_id,
            "card_id": card.pk,
            "from": None if old is None else old.name,
            "to": None if new is None else new.name,
            "reason": reason,
            "changed_at": timestamp(at),
        },
    )
    return row


@transaction.atomic
def member_tier_set_by_staff(
    *, card: Card, member_id: int, tier: Tier | None, note: str, at: datetime
) -> MemberTier:
    """Staff put the member in `tier` (None: no tier), with a reason; kept
    `tier_retention_days` from now like a reached tier. The caller locks the member's wallet
    first when it has one (`cashback.services.tiers`)."""
    if not note.strip():
        raise ValueError("A staff change of tier needs a reason.")
    current = member_tier_get(card=card, member_id=member_id)
    programme = card_programme(card)
    old = programme.tier(current.tier_id) if current is not None else None
    return _tier_set(
        card=card, row=current, member_id=member_id, old=old, new=tier, reason=TierReason.STAFF,
        at=at, retained_until=at + timedelta(days=card.tier_retention_days), note=note,
    )  # fmt: skip


# The fields a rule takes from its API body besides `hours`.
RULE_FIELDS = (
    "name", "kind", "factor", "percentage", "amount", "priority", "stackable", "active",
    "starts_at", "ends_at", "days_of_week", "categories", "skus", "min_purchase", "tiers",
    "first_purchase_only", "max_per_transaction", "max_uses_per_member", "per", "budget",
)  # fmt: skip
_KIND_VALUE = {"multiplier": "factor", "bonus_percentage": "percentage", "fixed_bonus": "amount"}
_LISTS = ("days_of_week", "categories", "skus", "tiers")
_AMOUNTS = ("amount", "min_purchase", "max_per_transaction", "budget")


def _four_places(value: Decimal) -> bool:
    """Rates and factors are kept to 4 decimal places."""
    return value == value.quantize(Decimal("0.0001"))


def _rule_apply(rule: EarningRule, changes: dict) -> None:
    """Sets the rule's fields from an API body (`null` and `[]` clear a condition)."""
    for name in RULE_FIELDS:
        if name in changes:
            value = changes[name]
            if name in _LISTS:
                value = sorted(set(value or [])) if name == "days_of_week" else list(value or [])
            setattr(rule, name, value)
    if "hours" in changes:
        hours = changes["hours"]
        rule.hours_from = None if hours is None else hours["from"]
        rule.hours_to = None if hours is None else hours["to"]


def rule_check(rule: EarningRule, card: Card) -> None:
    """Raises `InvalidInput` naming each field that does not hold."""
    errors: dict[str, list[str]] = {}
    value_field = _KIND_VALUE.get(rule.kind)
    for kind, name in _KIND_VALUE.items():
        given = getattr(rule, name) is not None
        if name == value_field and not given:
            errors[name] = [f"A {kind} rule needs {name}."]
        elif name != value_field and given:
            errors[name] = [f"Only a {kind} rule takes {name}."]
    if rule.factor is not None and not Decimal(1) < rule.factor <= 10:
        errors["factor"] = ["Must be more than 1 and at most 10."]
    if rule.percentage is not None and not Decimal(0) < rule.percentage <= 100:
        errors["percentage"] = ["Must be more than 0 and at most 100."]
    if rule.factor is not None and not _four_places(rule.factor):
        errors["factor"] = ["At most 4 decimal places."]
    if rule.percentage is not None and not _four_places(rule.percentage):
        errors["percentage"] = ["At most 4 decimal places."]
    for name in _AMOUNTS:
        value = getattr(rule, name)
        if value is not None and not money.has_valid_places(value, card.currency):
            digits = money.minor_digits(card.currency)
            errors[name] = [f"At most {digits} decimal places for {card.currency}."]
    if rule.starts_at and rule.ends_at and rule.ends_at <= rule.starts_at:
        errors["ends_at"] = ["Must be after starts_at."]
    if rule.max_uses_per_member is not None and not rule.per:
        errors["per"] = ["max_uses_per_member needs per: day, week, month, year or ever."]
    if rule.per and rule.max_uses_per_member is None:
        errors["max_uses_per_member"] = ["per needs max_uses_per_member."]
    if any(not 1 <= day <= 7 for day in rule.days_of_week or ()):
        errors["days_of_week"] = ["ISO days: 1 (Monday) to 7 (Sunday)."]
    if rule.tiers:
        known = set(
            Tier.objects.filter(app_id=card.app_id, card_id=card.pk).values_list("name", flat=True)
        )
        unknown = sorted(set(rule.tiers) - known)
        if unknown:
            errors["tiers"] = [f"The card has no tier named {', '.join(unknown)}."]
    if rule.budget is not None and rule.budget < rule.budget_spent:
        errors["budget"] = [
            f"The rule gave {money.quantize(rule.budget_spent, card.currency)} already; the "
            "budget cannot be less."
        ]
    if errors:
        raise InvalidInput("The rule is invalid.", details=errors)


@transaction.atomic
def rule_create(*, card: Card, fields: dict) -> EarningRule:
    """A new rule on the card, as the API's POST or `create_earning_rule` gives it. Raises
    `InvalidInput`."""
    rule = EarningRule(app_id=card.app_id, card=card)
    _rule_apply(rule, fields)
    rule_check(rule, card)
    rule.save()
    return rule


@transaction.atomic
def rule_update(*, card: Card, rule_id: int, changes: dict) -> EarningRule:
    """Changes the card's rule. The rule's row is locked first, so that a budget is never set
    below what concurrent earns have taken. Raises `NotFound`, `InvalidInput`."""
    rule = (
        EarningRule.objects.select_for_update()
        .filter(app_id=card.app_id, card=card, pk=rule_id)
        .first()
    )
    if rule is None:
        raise NotFound("Rule not found.")
    _rule_apply(rule, changes)
    rule_check(rule, card)
    rule.save()
    return rule


def rule_deactivate(*, card: Card, rule_id: int) -> EarningRule:
    """Deactivates the rule: it applies no more, and stays, with what it gave, for the
    breakdowns that name it."""
    return rule_update(card=card, rule_id=rule_id, changes={"active": False})


def tier_rename(*, tier: Tier, old: str) -> None:
    """Rules name tiers by name: a renamed tier keeps the rules that named it."""
    EarningRule.objects.filter(
        app_id=tier.app_id, card_id=tier.card_id, tiers__contains=[old]
    ).update(tiers=Func(F("tiers"), Value(old), Value(tier.name), function="array_replace"))


def tier_create(*, card: Card, name: str, threshold: Decimal, cashback_percentage: Decimal) -> Tier:
    """A new tier on the card. Raises `InvalidInput` (a taken name or threshold, a percentage
    out of range, too many decimal places)."""
    errors: dict[str, list[str]] = {}
    tiers = Tier.objects.filter(app_id=card.app_id, card_id=card.pk)
    if tiers.filter(name=name).exists():
        errors["name"] = ["The card has a tier of this name."]
    if tiers.filter(threshold=threshold).exists():
        errors["threshold"] = ["The card has a tier at this threshold."]
    if threshold < 0 or not money.has_valid_places(threshold, card.currency):
        errors["threshold"] = [f"An amount ≥ 0 in {card.currency}."]
    if not Decimal(0) < cashback_percentage <= 100 or not _four_places(cashback_percentage):
        errors["cashback_percentage"] = ["More than 0, at most 100, 4 decimal places at most."]
    if errors:
        raise InvalidInput("The tier is invalid.", details=errors)
    try:
        with transaction.atomic():
            return Tier.objects.create(
                app_id=card.app_id, card=card, name=name, threshold=threshold,
                cashback_percentage=cashback_percentage,
            )  # fmt: skip
    except IntegrityError:  # a concurrent tier took the name or the threshold
        raise InvalidInput(
            "The tier is invalid.", details={"threshold": ["Taken by another tier."]}
        ) from None
