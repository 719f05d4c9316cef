"""A stateful property test of a card's programme: earns of random baskets (each quoted first),
refunds by lines and by amount, redemptions, staff setting tiers and the worker's tier review,
while time moves forward, on a card whose rules and tiers are drawn at the start.

The machine does not compute what the engine should credit. It checks, after every step, what
must hold whatever the engine computed: the ledger proves itself, every rule's budget is what it
gave net of what refunds took back and never overspent, its uses are the earns that name it,
breakdowns add up and refunds never claim more of a contribution than it gave, lines are never
refunded past their amount, a quote is the earn that follows it and writes nothing, and a tier
is reached at once and never lost before its retention ends.
"""

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from rest_framework.test import APIClient

from apps_auth.services import api_key_create
from cashback.ledger_check import ledger_verify
from cashback.models import EntryType, LedgerEntry, Wallet
from cashback.selectors import qualifying_spend
from cashback.services.tiers import cashback_tiers_review, member_tier_staff_set
from members.models import Member
from members.tokens import member_token_issue
from programme.models import EarningRule, MemberTier, RuleUse, Tier
from programme.services import programme_cache_clear
from tests.factories import AppFactory, CardFactory, MemberFactory
from webhooks.models import WebhookEvent

API = "/api/v1/cashback"
ZERO = Decimal(0)
MILLIME = Decimal("0.001")
# The shop's products: SKU -> category (None: uncategorised).
SKUS = {"APL": "food", "BRD": "food", "COF": "drink", "TEA": "drink", "MUG": "kitchen", "PEN": None}
TIER_NAMES = ("Silver", "Gold", "Platinum")
keys = itertools.count()
new_members = itertools.count()

line_amounts = st.one_of(
    st.integers(min_value=1, max_value=120).map(Decimal),
    st.decimals(min_value=Decimal("0.1"), max_value=Decimal(120), places=3),
)
baskets = st.lists(st.tuples(st.sampled_from(sorted(SKUS)), line_amounts), min_size=1, max_size=5)
small_budgets = st.decimals(min_value=Decimal("0.5"), max_value=Decimal(5), places=3)
budgets = st.none() | st.decimals(min_value=Decimal(1), max_value=Decimal(25), places=3)
time_steps = st.one_of(
    st.integers(min_value=1, max_value=30).map(lambda hours: timedelta(hours=hours)),
    st.integers(min_value=1, max_value=10).map(lambda days: timedelta(days=days)),
)


def number(value) -> Decimal:
    """An amount of an answer, as a decimal."""
    return Decimal(str(value))


@dataclass
class ModelEarning:
    """What the machine knows of an earning without computing it: its basket and what was
    refunded of it."""

    entry_id: int
    member_id: int
    purchase: Decimal
    lines: dict[str, Decimal] | None  # SKU -> its lines' amount; None: earned without lines
    refunded: Decimal = ZERO
    refunded_lines: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def line_rest(self, sku: str) -> Decimal:
        assert self.lines is not None
        return self.lines[sku] - self.refunded_lines[sku]


class ProgrammeMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        # Each run starts from the database as the test found it (`teardown`).
        self.savepoint = transaction.savepoint()
        programme_cache_clear()
        self.app = AppFactory.create()
        self.card = CardFactory.create(
            app=self.app,
            cashback_percentage=Decimal(2),
            cashback_min_amount=0,
            cashback_max_amount=Decimal(5),
            tier_period_days=30,
            tier_retention_days=7,
        )
        self.members = [MemberFactory.create(app=self.app).pk for _ in range(3)]
        self.client = APIClient(
            headers={"X-App-Id": self.app.app_id, "X-Api-Key": api_key_create(app=self.app).raw_key}
        )
        self.client.default_format = "json"
        self.clock = timezone.now()
        self.earnings: dict[int, ModelEarning] = {}
        self.tier_rank: dict[int | None, int] = {None: -1}
        # Members' (tier rank, retained_until) as last seen, and those staff changed since.
        self.tiers_seen: dict[int, tuple[int, datetime | None]] = {}
        self.staff_changed: set[int] = set()

    def teardown(self):
        transaction.savepoint_rollback(self.savepoint)
        programme_cache_clear()

    def at_clock(self):
        """The machine's time is the service's now."""
        return mock.patch("django.utils.timezone.now", return_value=self.clock)

    def post(self, path: str, body: dict, **headers):
        with self.at_clock():
            return self.client.post(
                f"{API}/{path}", body, headers={"Idempotency-Key": f"k-{next(keys)}", **headers}
            )

    def created(self, path: str, body: dict) -> dict:
        response = self.post(f"cards/{self.card.pk}/{path}", body)
        assert response.status_code == 200, response.content
        return response.json()["data"]

    def snapshot(self) -> tuple:
        """Everything an operation that is refused, or a quote, must leave as it was."""
        return (
            LedgerEntry.objects.filter(app=self.app).count(),
            list(
                Wallet.objects.filter(card=self.card)
                .order_by("pk")
                .values_list("pk", "balance", "pending_balance")
            ),
            Member.objects.filter(app=self.app).count(),
            list(
                EarningRule.objects.filter(card=self.card)
                .order_by("pk")
                .values_list("pk", "budget_spent")
            ),
            list(RuleUse.objects.filter(app=self.app).order_by("pk").values_list("pk", "uses")),
            list(
                MemberTier.objects.filter(card=self.card)
                .order_by("pk")
                .values_list("pk", "tier_id", "retained_until")
            ),
            WebhookEvent.objects.filter(app=self.app).count(),
        )

    def member_tiers(self) -> dict[int, tuple[int, datetime | None]]:
        return {
            member_id: (self.tier_rank[tier_id], retained_until)
            for member_id, tier_id, retained_until in MemberTier.objects.filter(
                card=self.card
            ).values_list("member_id", "tier_id", "retained_until")
        }

    def earners(self) -> list[int]:
        return sorted({e.member_id for e in self.earnings.values()})

    def balance_of(self, member_id: int) -> Decimal:
        wallet = Wallet.objects.filter(card=self.card, member_id=member_id).first()
        return ZERO if wallet is None else wallet.balance

    @initialize(
        food_budget=small_budgets,
        food_percentage=st.sampled_from(["5", "10", "25"]),
        factor=st.sampled_from(["1.5", "2", "3"]),
        multiplied=st.sampled_from([["drink"], []]),
        welcome=st.sampled_from(["1", "2.5"]),
        daily_uses=st.integers(min_value=1, max_value=2),
        tiered=st.integers(min_value=2, max_value=3),
        thresholds=st.lists(st.integers(min_value=20, max_value=200), min_size=3, max_size=3),
        top_only=st.booleans(),
        priorities=st.lists(st.integers(min_value=1, max_value=4), min_size=6, max_size=6),
        other_budgets=st.lists(budgets, min_size=5, max_size=5),
    )
    def programme(
        self,
        food_budget,
        food_percentage,
        factor,
        multiplied,
        welcome,
        daily_uses,
        tiered,
        thresholds,
        top_only,
        priorities,
        other_budgets,
    ):
        """Two or three tiers, and six rules: a bonus on food whose small budget runs out, a
        multiplier, a first-purchase bonus, a bonus once or twice a day per member, a
        non-stackable bonus on the kitchen, one for the top tiers; their order drawn."""
        names = TIER_NAMES[:tiered]
        threshold = ZERO
        for rank, (name, step) in enumerate(zip(names, thresholds, strict=False)):
            threshold += step
            tier = self.created(
                "tiers",
                {"name": name, "threshold": str(threshold), "cashback_percentage": str(3 + rank)},
            )
            self.tier_rank[tier["id"]] = rank
        budget = [None if b is None else str(b) for b in other_budgets]
        bodies = [
            {"name": "Food bonus", "kind": "bonus_percentage", "percentage": food_percentage,
             "categories": ["food"], "budget": str(food_budget)},
            {"name": "Drinks multiplied", "kind": "multiplier", "factor": factor,
             "categories": multiplied, "budget": budget[0]},
            {"name": "Welcome", "kind": "fixed_bonus", "amount": welcome,
             "first_purchase_only": True, "budget": budget[1]},
            {"name": "Daily treat", "kind": "fixed_bonus", "amount": "0.5",
             "max_uses_per_member": daily_uses, "per": "day", "budget": budget[2]},
            {"name": "Kitchen exclusive", "kind": "bonus_percentage", "percentage": "4",
             "categories": ["kitchen"], "stackable": False, "budget": budget[3]},
            {"name": "Top tiers", "kind": "bonus_percentage", "percentage": "3",
             "tiers": list(names[-1:] if top_only else names[-2:]), "budget": budget[4]},
        ]  # fmt: skip
        for body, priority in zip(bodies, priorities, strict=True):
            self.created("rules", {**body, "priority": priority})

    @rule(basket=baskets, data=st.data())
    def earn(self, basket, data):
        """An earn, quoted first with the same body: the quote answers what the earn then
        credits, and writes nothing."""
        who = data.draw(st.sampled_from([*self.members, None]), label="member")
        with_lines = data.draw(st.integers(min_value=0, max_value=4), label="lines") > 0
        purchase = sum((amount for _, amount in basket), ZERO)
        body: dict = {"card_id": self.card.pk, "purchase_amount": str(purchase)}
        if who is None:
            body["email"] = f"new-{next(new_members)}@example.com"
        else:
            body["member_id"] = who
        if with_lines:
            body["lines"] = [
                {"sku": sku, "category": SKUS[sku], "amount": str(amount)} for sku, amount in basket
            ]
        before = self.snapshot()
        quote = self.post("cashback/quote", body)
        assert self.snapshot() == before, "a quote writes nothing"
        earned = self.post("cashback/earn", body)
        if quote.status_code != 200:
            assert quote.status_code == earned.status_code == 422, quote.content
            assert earned.json()["error"]["code"] == quote.json()["error"]["code"]
            assert self.snapshot() == before
            return
        assert earned.status_code == 200, earned.content
        quoted, earned_data = quote.json()["data"], earned.json()["data"]
        assert earned_data["breakdown"] == quoted["breakdown"]
        assert number(earned_data["cashback_earned"]) == number(quoted["cashback"])
        assert quoted["member_id"] == who
        member_id = earned_data["member_id"]
        if who is None:
            assert earned_data["member_created"] is True
            self.members.append(member_id)
        lines: dict[str, Decimal] | None = None
        if with_lines:
            lines = defaultdict(Decimal)
            for sku, amount in basket:
                lines[sku] += amount
        self.earnings[earned_data["transaction_id"]] = ModelEarning(
            entry_id=earned_data["transaction_id"],
            member_id=member_id,
            purchase=purchase,
            lines=lines,
        )
        # The tier the member's spend supports is reached at once (for its next earns).
        wallet = Wallet.objects.get(card=self.card, member_id=member_id)
        spend = qualifying_spend(wallet_id=wallet.pk, card=self.card, at=self.clock)
        tiers = Tier.objects.filter(card=self.card, threshold__lte=spend)
        supported = max((self.tier_rank[t.pk] for t in tiers), default=-1)
        reached = self.member_tiers().get(member_id, (-1, None))[0]
        assert reached >= supported, (spend, reached, supported)

    @rule(step=time_steps, basket=baskets, data=st.data())
    def earn_later(self, step, basket, data):
        """Time passes, then an earn."""
        self.clock += step
        self.earn(basket, data)

    def earning_to_refund(self, data, earnings: list[ModelEarning]) -> ModelEarning:
        """One of `earnings`, often one refunded in part already: what the next refund of it
        takes back depends on what the earlier ones claimed."""
        begun = [e for e in earnings if ZERO < e.refunded < e.purchase]
        choices = st.sampled_from(earnings)
        if begun:
            choices = choices | st.sampled_from(begun)
        return data.draw(choices, label="earning")

    @precondition(lambda self: any(e.lines for e in self.earnings.values()))
    @rule(data=st.data())
    def refund_lines(self, data):
        """A refund of some lines of an earning (often one refunded in part already): within
        what is left of each, or the rest of them all, or one line past what is left of it (or
        a SKU the basket never had), which is refused and changes nothing."""
        earning = self.earning_to_refund(data, [e for e in self.earnings.values() if e.lines])
        assert earning.lines is not None
        open_skus = sorted(sku for sku in earning.lines if earning.line_rest(sku) > 0)
        kinds = ["within", "within", "rest", "past", "unknown"] if open_skus else ["past"]
        kind = data.draw(st.sampled_from(kinds), label="kind")
        refund: dict[str, Decimal] = {}
        past: str | None = None
        if kind == "within":
            for sku in data.draw(st.lists(st.sampled_from(open_skus), min_size=1, unique=True)):
                rest = earning.line_rest(sku)
                whole = data.draw(st.booleans(), label=f"all of {sku}")
                refund[sku] = (
                    rest
                    if whole
                    else data.draw(
                        st.decimals(min_value=MILLIME, max_value=rest, places=3), label=sku
                    )
                )
        elif kind == "rest":
            refund = {sku: earning.line_rest(sku) for sku in open_skus}
        elif kind == "past":
            past = data.draw(st.sampled_from(sorted(earning.lines)), label="past")
            extra = data.draw(st.decimals(min_value=MILLIME, max_value=Decimal(5), places=3))
            refund[past] = earning.line_rest(past) + extra
        else:
            past = "ZZZ"
            refund[past] = Decimal(1)
        amount = sum(refund.values(), ZERO)
        before = self.snapshot()
        response = self.post(
            "cashback/refund",
            {
                "card_id": self.card.pk,
                "member_id": earning.member_id,
                "original_transaction_id": earning.entry_id,
                "lines": [{"sku": sku, "amount": str(a)} for sku, a in refund.items()],
            },
        )
        if past is not None or earning.refunded + amount > earning.purchase:
            assert response.status_code == 422, response.content
            error = response.json()["error"]
            assert error["code"] == "refund_exceeds_purchase"
            if past is not None:
                assert error["details"].get("sku") == past, error
            assert self.snapshot() == before, "a refused refund changes nothing"
            return
        assert response.status_code == 200, response.content
        earning.refunded += amount
        for sku, a in refund.items():
            earning.refunded_lines[sku] += a

    @precondition(lambda self: self.earnings)
    @rule(data=st.data())
    def refund_amount(self, data):
        """A refund of an amount of an earning's purchase: within what is left of it, or past
        it, which is refused."""
        earning = self.earning_to_refund(data, list(self.earnings.values()))
        rest = earning.purchase - earning.refunded
        kind = data.draw(st.sampled_from(["part", "rest", "past"] if rest > 0 else ["past"]))
        if kind == "part":
            amount = data.draw(st.decimals(min_value=MILLIME, max_value=rest, places=3))
        else:
            amount = rest if kind == "rest" else rest + MILLIME
        before = self.snapshot()
        response = self.post(
            "cashback/refund",
            {
                "card_id": self.card.pk,
                "member_id": earning.member_id,
                "original_transaction_id": earning.entry_id,
                "refund_amount": str(amount),
            },
        )
        if kind == "past":
            assert response.status_code == 422, response.content
            assert response.json()["error"]["code"] == "refund_exceeds_purchase"
            assert self.snapshot() == before
            return
        assert response.status_code == 200, response.content
        earning.refunded += amount

    @precondition(lambda self: self.earnings)
    @rule(data=st.data(), amount=line_amounts)
    def refund_naming_no_earning(self, data, amount):
        member_id = data.draw(st.sampled_from(self.earners()), label="member")
        response = self.post(
            "cashback/refund",
            {"card_id": self.card.pk, "member_id": member_id, "refund_amount": str(amount)},
        )
        assert response.status_code == 200, response.content

    @precondition(lambda self: self.earnings)
    @rule(data=st.data())
    def redeem(self, data):
        """A member spends cashback (which leaves less for refunds to take back), within the
        balance or past it."""
        member_id = data.draw(st.sampled_from(self.earners()), label="member")
        balance = self.balance_of(member_id)
        within = st.decimals(min_value=MILLIME, max_value=max(balance, MILLIME), places=3)
        amount = data.draw(within | st.decimals(min_value=MILLIME, max_value=Decimal(30), places=3))
        # Issued at the real now: the token's own clock is PyJWT's.
        token = member_token_issue(app=self.app, member_id=member_id).token
        before = self.snapshot()
        response = self.post(
            "cashback/redeem",
            {"card_id": self.card.pk, "amount": str(amount)},
            **{"X-Member-Token": token},
        )
        if amount > balance:
            assert response.status_code == 422, response.content
            assert response.json()["error"]["code"] == "insufficient_balance"
            assert self.snapshot() == before
            return
        assert response.status_code == 200, response.content

    @rule(data=st.data())
    def staff_set_a_tier(self, data):
        member_id = data.draw(st.sampled_from(self.members), label="member")
        tiers = list(Tier.objects.filter(card=self.card).order_by("threshold"))
        tier = data.draw(st.sampled_from([None, *tiers]), label="tier")
        with self.at_clock():
            member_tier_staff_set(card=self.card, member_id=member_id, tier=tier, note="Goodwill")
        self.staff_changed.add(member_id)

    @rule(step=time_steps, by_as_of=st.booleans())
    def the_worker_reviews_tiers(self, step, by_as_of):
        """Time passes, then the worker reviews the tiers whose retention has ended."""
        self.clock += step
        if by_as_of:
            cashback_tiers_review(as_of=self.clock, app_id=self.app.pk)
        else:
            with self.at_clock():
                cashback_tiers_review(app_id=self.app.pk)

    @rule(step=time_steps)
    def time_passes(self, step):
        self.clock += step

    @invariant()
    def the_ledger_proves_itself(self):
        assert ledger_verify().mismatches == []

    def entries(self) -> list[LedgerEntry]:
        return list(
            LedgerEntry.objects.filter(
                app=self.app, entry_type__in=[EntryType.EARNING, EntryType.REFUND]
            ).order_by("pk")
        )

    @invariant()
    def budgets_are_what_rules_gave_net_of_refunds(self):
        """A rule's budget_spent is its parts of the earnings less its parts of the refunds
        (negative amounts), within its budget. A rule without a budget keeps no account."""
        given: dict[int, Decimal] = defaultdict(Decimal)
        for entry in self.entries():
            for part in entry.breakdown or ():
                if part["rule_id"] is not None:
                    given[part["rule_id"]] += Decimal(part["amount"])
        for rule_ in EarningRule.objects.filter(card=self.card):
            assert rule_.budget_spent >= 0
            if rule_.budget is None:
                assert rule_.budget_spent == 0
                continue
            assert rule_.budget_spent <= rule_.budget, rule_.name
            assert rule_.budget_spent == given[rule_.pk], rule_.name

    @invariant()
    def uses_are_the_earnings_that_name_the_rule(self):
        named: dict[int, int] = defaultdict(int)
        for entry in self.entries():
            if entry.entry_type == EntryType.EARNING:
                for rule_id in {p["rule_id"] for p in entry.breakdown or ()} - {None}:
                    named[rule_id] += 1
        uses: dict[int, int] = defaultdict(int)
        ever = RuleUse.objects.filter(app=self.app, per="ever")
        for rule_id, count in ever.values_list("rule_id", "uses"):
            uses[rule_id] += count
        assert dict(uses) == dict(named)

    @invariant()
    def breakdowns_add_up_and_refunds_claim_within_each_part(self):
        entries = self.entries()
        earnings = {e.pk: e for e in entries if e.entry_type == EntryType.EARNING}
        claimed: dict[tuple[int, int], Decimal] = defaultdict(Decimal)
        for entry in earnings.values():
            parts = [Decimal(p["amount"]) for p in entry.breakdown or ()]
            assert sum(parts, ZERO) == entry.amount + entry.pending_amount
            assert all(part >= 0 for part in parts)
        for entry in entries:
            if entry.entry_type != EntryType.REFUND or entry.breakdown is None:
                continue
            assert entry.original_entry_id is not None
            original = earnings[entry.original_entry_id].breakdown or []
            for part in entry.breakdown:
                amount, claim = Decimal(part["amount"]), Decimal(part["claimed"])
                assert amount <= 0
                assert -amount <= claim
                assert part["rule_id"] == original[part["part"]]["rule_id"]
                claimed[entry.original_entry_id, part["part"]] += claim
        for (earning_id, index), claim in claimed.items():
            given = earnings[earning_id].breakdown or []
            assert claim <= Decimal(given[index]["amount"]), (earning_id, index)

    @invariant()
    def lines_are_never_refunded_past_their_amount(self):
        refunded: dict[int, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
        refunded_total: dict[int, Decimal] = defaultdict(Decimal)
        for entry in self.entries():
            if entry.entry_type == EntryType.REFUND and entry.original_entry_id is not None:
                assert entry.refund_amount is not None
                refunded_total[entry.original_entry_id] += entry.refund_amount
                for line in entry.lines or ():
                    refunded[entry.original_entry_id][line["sku"]] += Decimal(line["amount"])
        for entry in self.entries():
            if entry.entry_type != EntryType.EARNING:
                continue
            assert entry.purchase_amount is not None
            assert refunded_total[entry.pk] <= entry.purchase_amount
            bought: dict[str, Decimal] = defaultdict(Decimal)
            for line in entry.lines or ():
                bought[line["sku"]] += Decimal(line["amount"])
            for sku, amount in refunded[entry.pk].items():
                assert amount <= bought[sku], (entry.pk, sku)

    @invariant()
    def no_tier_is_lost_before_its_retention_ends(self):
        """Only staff take a member's tier away before its retained_until."""
        now = self.member_tiers()
        for member_id, (rank, _) in now.items():
            seen = self.tiers_seen.get(member_id)
            if seen is not None and rank < seen[0] and member_id not in self.staff_changed:
                retained_until = seen[1]
                assert retained_until is not None, (member_id, seen, rank)
                assert retained_until <= self.clock, (member_id, seen, rank)
        self.tiers_seen = now
        self.staff_changed.clear()


@pytest.mark.django_db
def test_programme_keeps_its_accounts_under_any_sequence():
    run_state_machine_as_test(
        ProgrammeMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
