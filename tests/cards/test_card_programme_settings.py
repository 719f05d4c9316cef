"""A card's programme settings through create_card: time zone, expiry policy, tier periods."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from cards.models import Card
from tests.factories import AppFactory


def create_card(*args) -> dict:
    app = AppFactory.create()
    out = StringIO()
    call_command("create_card", "--app", app.app_id, "--name", "C", "--percentage", "5", *args,
                 "--json", stdout=out)  # fmt: skip
    return json.loads(out.getvalue())


def test_create_card_takes_the_programme_settings(db):
    card = create_card(
        "--time-zone", "Europe/Paris", "--expiry-days", "30", "--expiry-policy", "fixed_date",
        "--expiry-date", "12-31", "--inactivity-days", "180", "--tier-period-days", "90",
        "--tier-retention-days", "30",
    )  # fmt: skip
    settings = {
        "time_zone": "Europe/Paris",
        "cashback_expiry_policy": "fixed_date",
        "cashback_expiry_date": "12-31",
        "cashback_inactivity_days": 180,
        "tier_period_days": 90,
        "tier_retention_days": 30,
    }
    assert {key: card["cashback_config"][key] for key in settings} == settings
    stored = Card.objects.get()
    assert (stored.time_zone, stored.cashback_expiry_date) == ("Europe/Paris", "12-31")


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--time-zone", "Mars/Olympus"], "time_zone"),
        (["--expiry-policy", "fixed_date"], "cashback_expiry_date"),
        (["--expiry-date", "12-31"], "cashback_expiry_date"),
        (["--expiry-policy", "fixed_date", "--expiry-date", "02-30"], "cashback_expiry_date"),
        (["--inactivity-days", "0"], "cashback_inactivity_days"),
        (["--tier-period-days", "0"], "tier_period_days"),
    ],
)
def test_create_card_refuses_bad_settings(db, args, field):
    with pytest.raises(CommandError, match=field):
        create_card(*args)
    assert not Card.objects.exists()
