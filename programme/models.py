"""A card's programme on top of its percentage: earning rules (campaigns) and tiers."""

from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q


class RuleKind(models.TextChoices):
    MULTIPLIER = "multiplier", "Multiplier of the base cashback"
    BONUS_PERCENTAGE = "bonus_percentage", "Bonus percentage of the matched amount"
    FIXED_BONUS = "fixed_bonus", "Fixed bonus per qualifying earn"


class Period(models.TextChoices):
    DAY = "day", "Day"
    WEEK = "week", "Week"
    MONTH = "month", "Month"
    YEAR = "year", "Year"
    EVER = "ever", "Ever"


class EarningRule(models.Model):
    """A rule that adds cashback to a card's base when its conditions hold at the earn's own
    time (in the card's time zone), within its limits: a campaign.

    `budget_spent` is what the rule gave net of what refunds took back from it; the database
    keeps it within `budget` whatever the concurrency (an earn locks the rule's row to take from
    it). How many earns it applied to is counted per member and period (`RuleUse`): an earn
    counts its member's uses, and no earn waits for another member's. A rule that ever applied
    is never deleted, only deactivated, so that the
    breakdowns that name it stay explainable.
    """

    app = models.ForeignKey("apps_auth.App", on_delete=models.PROTECT, related_name="+")
    card = models.ForeignKey(
        "cards.Card", on_delete=models.PROTECT, related_name="rules", db_index=False
    )
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=16, choices=RuleKind.choices)
    factor = models.DecimalField(
        max_digits=6,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("1.0001")), MaxValueValidator(Decimal(10))],
        help_text="multiplier: 1 < f ≤ 10, adds (f − 1) × the base cashback of the matched amount.",
    )
    percentage = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal(100))],
        help_text="bonus_percentage: 0 < p ≤ 100, adds p % of the matched amount.",
    )
    amount = models.DecimalField(
        max_digits=20,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.0001"))],
        help_text="fixed_bonus: added once per qualifying earn.",
    )
    priority = models.IntegerField(default=100, help_text="Lower applies first.")
    stackable = models.BooleanField(
        default=True, help_text="Off: when this rule applies, the rules after it do not."
    )
    active = models.BooleanField(default=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    ends_at = models.DateTimeField(null=True, blank=True)
    days_of_week = ArrayField(
        models.PositiveSmallIntegerField(), default=list, blank=True, help_text="ISO: 1 Monday … 7."
    )
    hours_from = models.TimeField(null=True, blank=True)
    hours_to = models.TimeField(null=True, blank=True, help_text="May be before hours_from.")
    categories = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    skus = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    min_purchase = models.DecimalField(
        max_digits=20, decimal_places=4, null=True, blank=True, help_text="Of the matched amount."
    )
    tiers = ArrayField(models.CharField(max_length=64), default=list, blank=True)
    first_purchase_only = models.BooleanField(default=False)
    max_per_transaction = models.DecimalField(
        max_digits=20, decimal_places=4, null=True, blank=True
    )
    max_uses_per_member = models.PositiveIntegerField(null=True, blank=True)
    per = models.CharField(max_length=5, choices=Period.choices, null=True, blank=True)
    budget = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    budget_spent = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal(0))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(kind="multiplier", factor__gt=1, factor__lte=10)
                    & Q(percentage__isnull=True, amount__isnull=True)
                )
                | (
                    Q(kind="bonus_percentage", percentage__gt=0, percentage__lte=100)
                    & Q(factor__isnull=True, amount__isnull=True)
                )
                | (
                    Q(kind="fixed_bonus", amount__gt=0)
                    & Q(factor__isnull=True, percentage__isnull=True)
                ),
                name="rule_kind_value",
            ),
            # Never overspent, never given back more than it gave.
            models.CheckConstraint(
                condition=Q(budget_spent__gte=0)
                & (Q(budget__isnull=True) | Q(budget_spent__lte=F("budget"))),
                name="rule_budget_spent_within",
            ),
            models.CheckConstraint(
                condition=Q(max_uses_per_member__isnull=True) | Q(per__isnull=False),
                name="rule_uses_per_period",
            ),
            models.CheckConstraint(
                condition=Q(hours_from__isnull=True, hours_to__isnull=True)
                | (
                    Q(hours_from__isnull=False, hours_to__isnull=False)
                    & ~Q(hours_from=F("hours_to"))
                ),
                name="rule_hours_both_or_none",
            ),
        ]
        indexes = [models.Index(fields=["app", "card", "priority", "id"], name="rule_card")]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def budget_remaining(self) -> Decimal | None:
        return None if self.budget is None else self.budget - self.budget_spent


class RuleUse(models.Model):
    """How many earns of a member one rule applied to in one calendar period of the card's
    zone (`period_start`: the period's first day; 0001-01-01 for `ever`). Every application
    is counted `ever` (a rule's `uses` is the sum of its members' `ever`), and, when the rule
    limits uses, in its day, week, month and year too (`programme.services.PERIODS`), so that
    a limit whose period marketing changes keeps counting what was used in it (a limit set on
    a rule that had none counts from then on, but for one per `ever`). Counted under the
    member's wallet lock, so that a member's earns on the card count one at a time."""

    app = models.ForeignKey("apps_auth.App", on_delete=models.PROTECT, related_name="+")
    rule = models.ForeignKey(
        EarningRule, on_delete=models.PROTECT, related_name="member_uses", db_index=False
    )
    member = models.ForeignKey(
        "members.Member", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    per = models.CharField(max_length=5, choices=Period.choices)
    period_start = models.DateField()
    uses = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["app", "member", "rule", "per", "period_start"],
                name="rule_use_per_period",
            )
        ]
        indexes = [models.Index(fields=["app", "rule"], name="rule_use_rule")]

    def __str__(self) -> str:
        return (
            f"Rule {self.rule_id}, member {self.member_id}: {self.uses} since {self.period_start}"
        )


class Tier(models.Model):
    """A level of a card's programme: members whose qualifying spend reaches `threshold` earn
    `cashback_percentage` instead of the card's."""

    app = models.ForeignKey("apps_auth.App", on_delete=models.PROTECT, related_name="+")
    card = models.ForeignKey(
        "cards.Card", on_delete=models.PROTECT, related_name="tiers", db_index=False
    )
    name = models.CharField(max_length=64)
    threshold = models.DecimalField(
        max_digits=20, decimal_places=4, validators=[MinValueValidator(Decimal(0))]
    )
    cashback_percentage = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0.0001")), MaxValueValidator(Decimal(100))],
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["threshold", "id"]
        constraints = [
            models.UniqueConstraint(fields=["app", "card", "threshold"], name="tier_threshold"),
            models.UniqueConstraint(fields=["app", "card", "name"], name="tier_name"),
            models.CheckConstraint(condition=Q(threshold__gte=0), name="tier_threshold_gte_0"),
            models.CheckConstraint(
                condition=Q(cashback_percentage__gt=0, cashback_percentage__lte=100),
                name="tier_percentage_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} (from {self.threshold})"


class TierReason(models.TextChoices):
    UPGRADE = "upgrade", "Upgrade"
    DOWNGRADE = "downgrade", "Downgrade"
    STAFF = "staff", "Set by staff"


class MemberTier(models.Model):
    """A member's tier on a card, kept at least until `retained_until`; changed under the
    member's wallet lock (earn, the worker's review, staff)."""

    app = models.ForeignKey("apps_auth.App", on_delete=models.PROTECT, related_name="+")
    # Each key is served by an index led by the app.
    card = models.ForeignKey(
        "cards.Card", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    member = models.ForeignKey(
        "members.Member", on_delete=models.PROTECT, related_name="tiers", db_index=False
    )
    tier = models.ForeignKey(
        Tier,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="members",
        db_index=False,
    )
    reached_at = models.DateTimeField(null=True, blank=True)
    retained_until = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=9, choices=TierReason.choices, default=TierReason.UPGRADE)
    note = models.CharField(max_length=500, blank=True, default="", help_text="Staff's reason.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["app", "card", "member"], name="member_tier_once"),
        ]
        indexes = [
            # The worker's review: members whose retention has ended.
            models.Index(
                fields=["app", "retained_until"],
                condition=Q(tier__isnull=False),
                name="member_tier_review",
            ),
            # Members per tier (the dashboard), and what a tier's deletion must not orphan.
            models.Index(fields=["app", "tier"], name="member_tier_tier"),
        ]

    def __str__(self) -> str:
        return f"Member {self.member_id} on card {self.card_id}: {self.tier_id}"
