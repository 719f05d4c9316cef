import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from programme.models import EarningRule, Tier


def run(*args) -> dict:
    out = StringIO()
    call_command(*args, "--json", stdout=out)
    return json.loads(out.getvalue())


def test_create_earning_rule_prints_the_rule(card):
    call_command_tier = run(
        "create_tier",
        "--card",
        str(card.pk),
        "--name",
        "gold",
        "--threshold",
        "1000",
        "--percentage",
        "7",
    )
    assert call_command_tier["name"] == "gold"
    rule = run(
        "create_earning_rule", "--card", str(card.pk), "--name", "Weekend evenings",
        "--kind", "multiplier", "--factor", "2", "--days", "6,7", "--hours", "18:00-02:00",
        "--categories", "coffee,tea", "--tiers", "gold", "--max-uses-per-member", "2",
        "--per", "month", "--budget", "500", "--not-stackable", "--priority", "5",
    )  # fmt: skip
    assert rule["id"] == EarningRule.objects.get().pk
    assert (rule["kind"], rule["factor"], rule["days_of_week"]) == ("multiplier", 2, [6, 7])
    assert rule["hours"] == {"from": "18:00", "to": "02:00"}
    assert (rule["categories"], rule["tiers"], rule["per"]) == (
        ["coffee", "tea"],
        ["gold"],
        "month",
    )
    assert (rule["budget"], rule["budget_remaining"], rule["stackable"]) == (500, 500, False)


def test_a_bad_rule_or_tier_is_refused_by_the_command(card):
    with pytest.raises(CommandError, match="factor"):
        run("create_earning_rule", "--card", str(card.pk), "--name", "x", "--kind", "multiplier")
    with pytest.raises(CommandError, match="No card"):
        run(
            "create_tier",
            "--card",
            "999999",
            "--name",
            "g",
            "--threshold",
            "1",
            "--percentage",
            "7",
        )
    with pytest.raises(CommandError, match="cashback_percentage"):
        run(
            "create_tier",
            "--card",
            str(card.pk),
            "--name",
            "g",
            "--threshold",
            "1",
            "--percentage",
            "0",
        )
    assert not EarningRule.objects.exists()
    assert not Tier.objects.exists()
