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
    ],
)
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
    EarningRule.objects.filter(pk=rule.pk).update(budget_spent=Decimal(200), uses=42)
    data = rule_form(rule.card, name="Weekend triple", kind="multiplier", percentage="", factor="3")
    data.update(budget="500", days_of_week="6,7")
    del data["card"]
    response = staff_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    rule.refresh_from_db()
    assert (rule.name, rule.factor, rule.budget_spent, rule.uses) == (
        "Weekend triple",
        Decimal(3),
        Decimal(200),
        42,
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
    assert both.status_code == 403  # one of them may not be deleted: neither is
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
