import json
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from apps_auth.models import App
from cards.models import Card
from cashback.ledger_check import ledger_verify
from cashback.management.commands.bench_seed import CATALOGUE
from cashback.models import LedgerEntry, Wallet
from cashback.services import cashback_earn
from members.models import Member
from members.services import MemberRef
from programme.engine import Line
from programme.models import EarningRule, RuleKind

pytestmark = pytest.mark.django_db(transaction=True)


def _seed(*args: str) -> dict:
    out = StringIO()
    call_command("bench_seed", "--json", *args, stdout=out)
    return json.loads(out.getvalue())


def test_bench_seed_loads_a_consistent_ledger():
    result = _seed("--hot=50", "--total=125", "--per-wallet=30")
    assert result["entries"] == 125
    assert result["wallets"] == 4
    hot = Wallet.objects.get(member_id=result["hot_member_id"])
    assert hot.card_id == result["card_id"]
    assert LedgerEntry.objects.filter(wallet=hot).count() == 50
    assert hot.balance == 50 * LedgerEntry.objects.filter(wallet=hot).earliest("id").amount
    assert ledger_verify().mismatches == []


def test_bench_seed_gives_a_second_card_twenty_active_rules_of_every_kind_of_condition():
    result = _seed("--hot=1", "--total=1")
    assert result["programme_card_id"] != result["card_id"]
    rules = list(EarningRule.objects.filter(card_id=result["programme_card_id"]))
    assert result["rules"] == len(rules) == 20
    assert all(rule.active for rule in rules)
    assert {rule.kind for rule in rules} == set(RuleKind.values)
    assert sum(bool(rule.categories) for rule in rules) >= 8
    assert sum(bool(rule.skus) for rule in rules) >= 2
    assert any(rule.days_of_week for rule in rules)
    assert any(rule.hours_from is not None for rule in rules)
    windows = [(r.hours_from, r.hours_to) for r in rules if r.hours_from and r.hours_to]
    assert any(start > end for start, end in windows)  # one wraps past midnight
    assert any(rule.min_purchase is not None for rule in rules)
    assert any(rule.starts_at is not None and rule.ends_at is not None for rule in rules)
    assert sum(rule.max_uses_per_member is not None for rule in rules) >= 2
    assert sum(rule.budget is not None for rule in rules) == 2
    assert any(rule.first_purchase_only for rule in rules)
    # Not stackable: only the last two, so that they stop no more than each other.
    assert [rule.stackable for rule in rules][-2:] == [False, False]
    assert all(rule.stackable for rule in rules[:-2])
    # Every category and SKU a rule names is in the catalogue the benchmark's baskets use.
    assert {c for rule in rules for c in rule.categories} <= {c for _, c in CATALOGUE}
    assert {s for rule in rules for s in rule.skus} <= {s for s, _ in CATALOGUE}


def test_bench_seed_keeps_one_programme_card_per_app_and_seeds_the_plain_card():
    first = _seed("--hot=1", "--total=1")
    app = first["app_id"]
    second = _seed("--hot=2", "--total=2", f"--app={app}")
    assert second["programme_card_id"] == first["programme_card_id"]
    assert second["card_id"] == first["card_id"]
    assert Card.objects.filter(app__app_id=app).count() == 2
    assert EarningRule.objects.filter(card_id=first["programme_card_id"]).count() == 20


def _basket(*skus: str) -> list[Line]:
    category = dict(CATALOGUE)
    return [Line(sku=sku, category=category[sku], amount=Decimal(10)) for sku in skus]


def test_a_catalogue_basket_earns_on_several_rules_and_a_clearance_line_stops_the_catch_all():
    result = _seed("--hot=1", "--total=1")
    app = App.objects.get(app_id=result["app_id"])
    card = Card.objects.get(pk=result["programme_card_id"])
    member = Member.objects.create(app=app, email="shopper@example.com")

    def earn(*skus: str) -> list[str]:
        basket = _basket(*skus)
        posted = cashback_earn(
            app=app,
            card=card,
            member_ref=MemberRef(member_id=member.pk),
            purchase_amount=sum((line.amount for line in basket), Decimal(0)),
            lines=basket,
        )
        breakdown = posted.entry.breakdown or []
        assert sum((Decimal(c["amount"]) for c in breakdown), Decimal(0)) == posted.entry.amount
        return [c["name"] for c in breakdown if c["source"] == "rule"]

    first = earn(
        "COF-ESPRESSO-250", "BRD-OLIVE-OIL-1L", "FRZ-PIZZA-2", "FRZ-ICECREAM-1L", "TEA-MINT-50"
    )
    for name in (
        "Welcome bonus",
        "Double cashback on coffee",
        "Coffee club: 1 per visit, 3 a week",
        "Tea +4 %",
        "Frozen over 20 +2 %",
        "Olive oil and harissa, supplier-funded +10 %",
        "New espresso range, supplier-funded 0.5",
        "Daily visit 0.2, once a day",
        "Everything else +0.5 %, alone",
    ):
        assert name in first
    second = earn(
        "COF-ARABICA-1KG", "CLR-MUG-XMAS", "DAI-MILK-1L", "SNK-CHIPS-150", "PAN-PASTA-500"
    )
    assert "Welcome bonus" not in second
    assert "Daily visit 0.2, once a day" not in second  # used today
    assert "Clearance quadruple, alone" in second
    assert "Everything else +0.5 %, alone" not in second
    assert ledger_verify().mismatches == []
