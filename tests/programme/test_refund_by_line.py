"""Refunds of an earning made with lines: each line takes back its share of every contribution
it earned, never past its amount, and what a rule gave returns to its budget."""

from decimal import Decimal

from cashback.ledger_check import ledger_verify
from cashback.models import LedgerEntry
from programme.models import EarningRule
from tests.factories import RuleFactory
from tests.helpers import earn, error

REFUND = "/api/v1/cashback/cashback/refund"
COFFEE = {"sku": "COF-1", "category": "coffee", "amount": "30"}
MUG = {"sku": "MUG-1", "category": "kitchen", "amount": "20"}


def refund(api, card, member, original: int, lines: list[dict], **extra):
    body = {
        "card_id": card.pk,
        "member_id": member.pk,
        "original_transaction_id": original,
        "lines": lines,
        **extra,
    }
    return api.post(REFUND, body)


def test_a_line_takes_back_its_share_of_each_contribution(api, card, member):
    rule = RuleFactory.create(card=card, percentage=Decimal(10), categories=["coffee"])
    earning = earn(api, card, member, "50", lines=[COFFEE, MUG])  # 2.5 base + 3 coffee
    response = refund(
        api, card, member, earning["transaction_id"], [{"sku": "MUG-1", "amount": "20"}]
    )
    assert response.status_code == 200, response.json()
    data = response.json()["data"]
    # The mug earned 20/50 of the base (1) and nothing of the coffee rule.
    assert data["cashback_deducted"] == 1
    assert data["refund_amount"] == 20
    entry = LedgerEntry.objects.get(pk=data["transaction_id"])
    assert entry.breakdown is not None
    assert [(p["source"], p["amount"]) for p in entry.breakdown] == [("card", "-1.000")]
    response = refund(
        api, card, member, earning["transaction_id"], [{"sku": "COF-1", "amount": "15"}]
    )
    data = response.json()["data"]
    # Half the coffee line: 15/50 of the base (0.75) and half the rule's 3 (1.5).
    assert data["cashback_deducted"] == 2.25
    rule.refresh_from_db()
    assert rule.budget_spent == 0  # no budget: nothing to return to


def test_refunding_every_line_takes_back_exactly_the_earning(api, card, member):
    RuleFactory.create(card=card, percentage=Decimal("3.333"), categories=["coffee"])
    lines = [
        {"sku": "A", "category": "coffee", "amount": "10.001"},
        {"sku": "B", "category": "coffee", "amount": "10.001"},
        {"sku": "C", "amount": "10.001"},
    ]
    earning = earn(api, card, member, "30.003", lines=lines)
    taken = Decimal(0)
    for sku in ("A", "B", "C"):
        response = refund(
            api, card, member, earning["transaction_id"], [{"sku": sku, "amount": "10.001"}]
        )
        taken += Decimal(str(response.json()["data"]["cashback_deducted"]))
    assert taken == Decimal(str(earning["cashback_earned"]))
    assert response.json()["data"]["new_balance"] == 0


def test_a_line_is_never_refunded_past_its_amount(api, card, member):
    RuleFactory.create(card=card)
    earning = earn(api, card, member, "50", lines=[COFFEE, MUG])
    assert (
        refund(
            api, card, member, earning["transaction_id"], [{"sku": "MUG-1", "amount": "15"}]
        ).status_code
        == 200
    )
    response = refund(
        api, card, member, earning["transaction_id"], [{"sku": "MUG-1", "amount": "5.001"}]
    )
    assert response.status_code == 422
    assert response.json() == error(
        "refund_exceeds_purchase",
        details={
            "sku": "MUG-1",
            "line_amount": 20,
            "already_refunded": 15,
            "refundable": 5,
            "original_transaction_id": earning["transaction_id"],
        },
    )
    unknown = refund(api, card, member, earning["transaction_id"], [{"sku": "TEA", "amount": "1"}])
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"]["sku"] == "TEA"
    assert LedgerEntry.objects.filter(entry_type="refund").count() == 1


def test_lines_refund_only_an_earning_made_with_lines(api, card, member):
    earning = earn(api, card, member, "50")
    response = refund(
        api, card, member, earning["transaction_id"], [{"sku": "MUG-1", "amount": "5"}]
    )
    assert response.status_code == 400
    assert "lines" in response.json()["error"]["details"]
    no_original = api.post(
        REFUND, {"card_id": card.pk, "member_id": member.pk, "lines": [{"sku": "A", "amount": "1"}]}
    )
    assert no_original.status_code == 400
    mismatch = refund(
        api,
        card,
        member,
        earning["transaction_id"],
        [{"sku": "A", "amount": "1"}],
        refund_amount="2",
    )
    assert mismatch.status_code == 400
    assert not LedgerEntry.objects.filter(entry_type="refund").exists()


def test_what_a_refund_takes_back_of_a_rule_returns_to_its_budget(api, card, member):
    rule = RuleFactory.create(card=card, percentage=Decimal(10), budget=Decimal(100))
    earning = earn(api, card, member, "50", lines=[COFFEE, MUG])  # the rule gives 5
    rule.refresh_from_db()
    assert rule.budget_spent == Decimal(5)
    refund(api, card, member, earning["transaction_id"], [{"sku": "COF-1", "amount": "30"}])
    rule.refresh_from_db()
    assert rule.budget_spent == Decimal(2)  # 30/50 of the rule's 5 came back
    # A refund by amount against the earning takes back in proportion, and returns as much.
    api.post(
        REFUND,
        {
            "card_id": card.pk,
            "member_id": member.pk,
            "original_transaction_id": earning["transaction_id"],
            "refund_amount": "20",
        },
    )
    rule.refresh_from_db()
    assert rule.budget_spent == 0
    assert LedgerEntry.objects.get(pk=earning["transaction_id"]).wallet.balance == 0


def test_only_what_was_taken_returns_to_a_budget(api, card, member, merchant):
    from cashback.services import cashback_redeem

    rule = RuleFactory.create(card=card, percentage=Decimal(10), budget=Decimal(100))
    earning = earn(api, card, member, "100")  # 5 base + 10 rule
    cashback_redeem(app=merchant.app, card=card, member_id=member.pk, amount=Decimal(12))
    response = api.post(
        REFUND,
        {
            "card_id": card.pk,
            "member_id": member.pk,
            "original_transaction_id": earning["transaction_id"],
            "refund_amount": "100",
        },
    )
    data = response.json()["data"]
    assert (data["cashback_deducted"], data["cashback_not_recovered"]) == (3, 12)
    rule.refresh_from_db()
    # Of the 3 taken, the rule's share (10 of 15) returns: 2. The member kept the rest.
    assert rule.budget_spent == Decimal(8)
    assert EarningRule.objects.get().budget_remaining == Decimal(92)


def test_what_a_rule_gave_without_a_budget_never_returns_to_a_later_one(api, card, member):
    rule = RuleFactory.create(card=card, percentage=Decimal(10))
    earning = earn(api, card, member, "100")  # the rule gives 10, from no budget
    response = api.patch(f"/api/v1/cashback/rules/{rule.pk}", {"budget": "20"})
    assert response.status_code == 200
    refunded = api.post(
        REFUND,
        {
            "card_id": card.pk,
            "member_id": member.pk,
            "refund_amount": "100",
            "original_transaction_id": earning["transaction_id"],
        },
    )
    assert refunded.status_code == 200, refunded.json()
    rule.refresh_from_db()
    assert rule.budget_spent == 0
    assert rule.budget_remaining == 20


def test_what_a_reversal_settles_of_a_refunds_claim_returns_to_the_budget(
    api, card, member, merchant
):
    from cashback.services import cashback_redeem, cashback_reverse

    rule = RuleFactory.create(card=card, percentage=Decimal(10), budget=Decimal(100))
    earning = earn(api, card, member, "100")  # 5 base + 10 rule
    first = cashback_redeem(app=merchant.app, card=card, member_id=member.pk, amount=Decimal(9))
    second = cashback_redeem(app=merchant.app, card=card, member_id=member.pk, amount=Decimal(6))
    body = {"card_id": card.pk, "member_id": member.pk, "refund_amount": "100"}
    response = api.post(REFUND, {**body, "original_transaction_id": earning["transaction_id"]})
    assert response.json()["data"]["cashback_not_recovered"] == 15  # nothing left to take
    rule.refresh_from_db()
    assert rule.budget_spent == Decimal(10)  # nothing taken: nothing back yet
    # Each reversal settles part of the claim: the rule's 10 first, then the base's 5.
    cashback_reverse(app=merchant.app, card=card, transaction_id=first.entry.pk)
    rule.refresh_from_db()
    assert rule.budget_spent == Decimal(1)
    cashback_reverse(app=merchant.app, card=card, transaction_id=second.entry.pk)
    rule.refresh_from_db()
    assert rule.budget_spent == 0
    assert ledger_verify().mismatches == []


def test_a_reversal_settling_several_claims_returns_to_the_budgets_in_the_rules_order(
    api, card, member, merchant
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from cashback.services import cashback_redeem, cashback_reverse

    first = RuleFactory.create(card=card, percentage=Decimal(10), budget=Decimal(100), skus=["A"])
    second = RuleFactory.create(card=card, percentage=Decimal(10), budget=Decimal(100), skus=["B"])
    EarningRule.objects.filter(pk=first.pk).update(priority=1)
    EarningRule.objects.filter(pk=second.pk).update(priority=2)
    by_second = earn(api, card, member, "100", lines=[{"sku": "B", "amount": "100"}])
    by_first = earn(api, card, member, "100", lines=[{"sku": "A", "amount": "100"}])
    redemption = cashback_redeem(
        app=merchant.app, card=card, member_id=member.pk, amount=Decimal(30)
    )
    for earning in (by_second, by_first):  # the older claim is on the second rule's part
        body = {"card_id": card.pk, "member_id": member.pk, "refund_amount": "100"}
        response = api.post(REFUND, {**body, "original_transaction_id": earning["transaction_id"]})
        assert response.json()["data"]["cashback_not_recovered"] == 15
    with CaptureQueriesContext(connection) as queries:
        cashback_reverse(app=merchant.app, card=card, transaction_id=redemption.entry.pk)
    updated = [
        rule.pk
        for query in queries.captured_queries
        if query["sql"].startswith('UPDATE "programme_earningrule"')
        for rule in (first, second)
        if f'"id" = {rule.pk}' in query["sql"]
    ]
    # Locked in the order an earn locks them: a reversal and an earn never wait on each other.
    assert updated == [first.pk, second.pk]
    assert [rule.budget_spent for rule in EarningRule.objects.order_by("priority")] == [0, 0]
    assert ledger_verify().mismatches == []
