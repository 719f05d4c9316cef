"""The programme in the back office: earning rules, tiers and members' tiers."""

from decimal import Decimal

import pytest
from django.urls import reverse

from programme.models import EarningRule, MemberTier, Tier
from tests.cashback.back_office_seed import seed_back_office


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def seeded(merchant):
    return seed_back_office(merchant.app)


def rule_form(card, **fields):
    return {
        "card": card.pk,
        "name": "Happy hour",
        "kind": "bonus_percentage",
        "percentage": "2",
        "priority": "10",
        "stackable": "on",
        "active": "on",
        "days_of_week": "",
        "categories": "",
        "skus": "",
        "tiers": "",
        **fields,
    }


@pytest.mark.parametrize(
    "model", ["programme_earningrule", "programme_tier", "programme_membertier"]
)
def test_the_programme_has_admin_lists(staff_client, seeded, model):
    page = staff_client.get(reverse(f"admin:{model}_changelist"))
    assert page.status_code == 200


def test_the_rules_list_shows_the_budget_used_and_left(staff_client, seeded):
    page = staff_client.get(reverse("admin:programme_earningrule_changelist"))
    content = page.content.decode()
    assert "187.250 of 500.000 TND" in content
    assert "312.750" in content
    assert "Weekend double" in content
    filtered = staff_client.get(
        reverse("admin:programme_earningrule_changelist"), {"active__exact": "1"}
    )
    assert len(filtered.context["cl"].result_list) == 2


def test_staff_create_a_rule_on_a_card_of_its_app(staff_client, seeded):
    response = staff_client.post(
        reverse("admin:programme_earningrule_add"), rule_form(seeded.card, budget="50")
    )
    assert response.status_code == 302
    rule = EarningRule.objects.get(name="Happy hour")
    assert (rule.app_id, rule.card_id, rule.percentage, rule.budget) == (
        seeded.card.app_id,
        seeded.card.pk,
        Decimal(2),
        Decimal(50),
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"kind": "multiplier", "percentage": ""}, "factor"),
        ({"factor": "2"}, "factor"),
        ({"budget": "1.0001"}, "budget"),
        ({"max_uses_per_member": "2"}, "per"),
        ({"hours_from": "18:00"}, "hours_to"),
        # As the API refuses them: one check for both.
        ({"days_of_week": "6,8"}, "days_of_week"),
        ({"tiers": "Diamond"}, "tiers"),
        ({"starts_at_0": "2026-12-02", "starts_at_1": "00:00", "ends_at_0": "2026-12-01",
          "ends_at_1": "00:00"}, "ends_at"),
        ({"per": "week"}, "max_uses_per_member"),
    ],
)  # fmt: skip
def test_a_rule_takes_its_kinds_value_only(staff_client, seeded, fields, field):
    response = staff_client.post(
        reverse("admin:programme_earningrule_add"), rule_form(seeded.card, **fields)
    )
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert not EarningRule.objects.filter(name="Happy hour").exists()


def test_saving_a_rule_keeps_the_counters_the_earns_moved(staff_client, seeded):
    rule = seeded.rule
    url = reverse("admin:programme_earningrule_change", args=[rule.pk])
    assert staff_client.get(url).status_code == 200
    # An earn spends from the budget while the form is open.
    EarningRule.objects.filter(pk=rule.pk).update(budget_spent=Decimal(200))
    data = rule_form(rule.card, name="Weekend triple", kind="multiplier", percentage="", factor="3")
    data.update(budget="500", days_of_week="6,7")
    del data["card"]
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    rule.refresh_from_db()
    assert (rule.name, rule.factor, rule.budget_spent) == (
        "Weekend triple",
        Decimal(3),
        Decimal(200),
    )


def test_a_budget_never_drops_below_what_the_rule_gave(staff_client, seeded):
    rule = seeded.rule
    data = rule_form(rule.card, kind="multiplier", percentage="", factor="2", budget="100")
    del data["card"]
    response = staff_client.post(
        reverse("admin:programme_earningrule_change", args=[rule.pk]), data
    )
    assert response.status_code == 200
    assert "budget" in response.context["adminform"].form.errors
    rule.refresh_from_db()
    assert rule.budget == Decimal(500)


def test_a_rule_that_applied_is_deactivated_not_deleted(staff_client, seeded):
    used, unused = (
        seeded.rule,
        EarningRule.objects.create(
            app=seeded.card.app, card=seeded.card, name="Never used", kind="fixed_bonus", amount=1
        ),
    )
    delete = reverse("admin:programme_earningrule_delete", args=[used.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    changelist = reverse("admin:programme_earningrule_changelist")
    both = staff_client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [used.pk, unused.pk], "post": "yes"},
    )
    # The used rule's uses protect it: Django answers the page that says so, deleting neither.
    assert both.status_code == 200
    assert b"Cannot delete earning rules" in both.content
    assert EarningRule.objects.filter(pk__in=[used.pk, unused.pk]).count() == 2
    staff_client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [unused.pk], "post": "yes"},
    )
    assert not EarningRule.objects.filter(pk=unused.pk).exists()
    staff_client.post(changelist, {"action": "deactivate", "_selected_action": [used.pk]})
    used.refresh_from_db()
    assert used.active is False


def test_tiers_are_listed_by_card_and_threshold(staff_client, seeded):
    page = staff_client.get(reverse("admin:programme_tier_changelist"))
    assert [t.name for t in page.context["cl"].result_list] == ["Silver", "Gold", "Platinum"]


def test_a_cards_tiers_have_distinct_thresholds(staff_client, seeded):
    response = staff_client.post(
        reverse("admin:programme_tier_add"),
        {
            "card": seeded.card.pk,
            "name": "Bronze",
            "threshold": "250",
            "cashback_percentage": "5.5",
        },
    )
    assert response.status_code == 200
    assert "threshold" in response.context["adminform"].form.errors
    ok = staff_client.post(
        reverse("admin:programme_tier_add"),
        {"card": seeded.card.pk, "name": "Bronze", "threshold": "50", "cashback_percentage": "5.5"},
    )
    assert ok.status_code == 302
    assert Tier.objects.get(name="Bronze").app_id == seeded.card.app_id


def test_members_tiers_are_read_only(staff_client, seeded):
    member_tier = MemberTier.objects.earliest("id")
    assert staff_client.get(reverse("admin:programme_membertier_add")).status_code == 403
    change = reverse("admin:programme_membertier_change", args=[member_tier.pk])
    staff_client.post(change, {"tier": seeded.tiers[2].pk})
    member_tier.refresh_from_db()
    assert member_tier.tier != seeded.tiers[2]


def test_a_rules_page_previews_what_a_basket_would_earn_now(staff_client, merchant):
    from cashback.models import LedgerEntry
    from members.models import Member
    from tests.factories import CardFactory, MemberFactory, RuleFactory

    card = CardFactory.create(app=merchant.app)
    rule = RuleFactory.create(card=card, name="Coffee 10 %", categories=["coffee"], budget=50)
    member = MemberFactory.create(app=merchant.app)
    url = reverse("admin:programme_earningrule_change", args=[rule.pk])
    page = staff_client.get(url)
    assert b'id="preview"' in page.content
    assert page.context["preview"]["quote"] is None
    asked = staff_client.get(
        url,
        {
            "preview-member": str(member.pk),
            "preview-lines": "COF-1, coffee, 30\nMUG-1, kitchen, 20",
            "preview-purchase_amount": "",
        },
    )
    quote = asked.context["preview"]["quote"]
    assert quote["cashback"] == Decimal("5.500")
    assert [(p["source"], p["name"], p["amount"]) for p in quote["breakdown"]] == [
        ("card", card.name, Decimal("2.500")),
        ("rule", "Coffee 10 %", Decimal("3.000")),
    ]
    assert b'id="preview-total"' in asked.content
    # A new member, by an unknown email: nobody is created, nothing is spent.
    staff_client.get(url, {"preview-member": "", "preview-purchase_amount": "100"})
    assert Member.objects.count() == 1
    assert not LedgerEntry.objects.exists()
    rule.refresh_from_db()
    assert rule.budget_spent == 0
    bad = staff_client.get(url, {"preview-member": "", "preview-lines": "A, x, 1.0001"})
    assert bad.context["preview"]["errors"]
    assert bad.context["preview"]["quote"] is None


def test_staff_set_a_members_tier_with_a_reason_from_the_member_page(staff_client, merchant):
    import json

    from tests.factories import CardFactory, MemberFactory, TierFactory
    from tests.helpers import give_balance
    from webhooks.models import WebhookEvent

    card = CardFactory.create(app=merchant.app)
    gold = TierFactory.create(card=card, name="Gold", threshold=Decimal(10_000))
    member = MemberFactory.create(app=merchant.app)
    give_balance(app=merchant.app, card=card, member=member, purchase="50")
    page = staff_client.get(reverse("admin:members_member_change", args=[member.pk]))
    assert b'id="member-set-tier"' in page.content
    url = reverse("admin:members_member_set_tier", args=[member.pk])
    assert staff_client.get(url).status_code == 405
    refused = staff_client.post(url, {"card": card.pk, "tier": gold.pk, "reason": " "})
    assert refused.status_code == 302
    assert not MemberTier.objects.exists()
    staff_client.post(url, {"card": card.pk, "tier": gold.pk, "reason": "Complaint goodwill"})
    row = MemberTier.objects.get()
    assert (row.tier, row.reason, row.note) == (gold, "staff", "Complaint goodwill")
    event = WebhookEvent.objects.get(event_type="member.tier_changed")
    assert json.loads(event.body)["data"]["to"] == "Gold"


def test_setting_a_tier_needs_the_permission(client, django_user_model, merchant):
    from tests.factories import CardFactory, MemberFactory, TierFactory

    card = CardFactory.create(app=merchant.app)
    gold = TierFactory.create(card=card)
    member = MemberFactory.create(app=merchant.app)
    user = django_user_model.objects.create_user("support", "s@example.com", "pw", is_staff=True)
    client.force_login(user)
    url = reverse("admin:members_member_set_tier", args=[member.pk])
    response = client.post(url, {"card": card.pk, "tier": gold.pk, "reason": "x"})
    assert response.status_code == 403
    assert not MemberTier.objects.exists()


def test_setting_a_tier_with_a_malformed_id_changes_nothing(staff_client, merchant):
    from tests.factories import CardFactory, MemberFactory

    card = CardFactory.create(app=merchant.app)
    member = MemberFactory.create(app=merchant.app)
    url = reverse("admin:members_member_set_tier", args=[member.pk])
    assert staff_client.post(url, {"card": "abc", "tier": "", "reason": "x"}).status_code == 302
    assert staff_client.post(url, {"card": card.pk, "tier": "x1", "reason": "x"}).status_code == 302
    assert not MemberTier.objects.exists()


def test_renaming_a_tier_keeps_the_rules_that_name_it(staff_client, merchant):
    from tests.factories import CardFactory, RuleFactory, TierFactory

    card = CardFactory.create(app=merchant.app)
    tier = TierFactory.create(card=card, name="Gold", threshold=Decimal(100))
    rule = RuleFactory.create(card=card, tiers=["Gold"])
    url = reverse("admin:programme_tier_change", args=[tier.pk])
    response = staff_client.post(
        url,
        {"card": card.pk, "name": "Premium", "threshold": "100", "cashback_percentage": "7"},
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    rule.refresh_from_db()
    assert rule.tiers == ["Premium"]
