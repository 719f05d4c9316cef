"""The back office's home page: its name on every page, and the dashboard's figures, each
checked against the ledger it sums."""

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from cashback.models import EntryType, LedgerEntry, Lot, Wallet
from tests.cashback.back_office_seed import seed_back_office
from tests.factories import MemberFactory
from tests.helpers import give_balance

BRAND = b"Cashback back office"


@pytest.fixture
def staff(client, django_user_model):
    """A logged-in staff client in a role ("Support", "Finance") or a superuser (None)."""

    def login(role=None):
        if role is None:
            user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
        else:
            user = django_user_model.objects.create_user(f"user-{role}", password="pw")
            user.is_staff = True
            user.save()
            user.groups.add(Group.objects.get(name=role))
        client.force_login(user)
        return client

    return login


@pytest.fixture
def seeded(merchant):
    return seed_back_office(merchant.app)


def test_every_admin_page_carries_the_back_offices_name(client, staff, seeded):
    pages = [client.get(reverse("admin:login"))]
    staff("Support")
    pages += [
        client.get(reverse("admin:index")),
        client.get(reverse("admin:members_member_changelist")),
        client.get(reverse("admin:members_member_change", args=[seeded.members[0].pk])),
    ]
    for page in pages:
        assert page.status_code == 200
        assert b"<title>" in page.content
        title = page.content.split(b"<title>")[1].split(b"</title>")[0]
        assert BRAND in title
        assert b'<div id="site-name"><a href="/admin/">Cashback back office</a></div>' in (
            page.content
        )
        assert b"Django administration" not in page.content
        assert b"Django site admin" not in page.content


def test_the_home_page_is_the_dashboard_for_finance(staff, seeded):
    page = staff("Finance").get(reverse("admin:index"))
    assert page.status_code == 200
    assert [figures.currency for figures in page.context["currencies"]] == ["EUR", "TND"]
    for text in (b"Outstanding liability", b"Campaign budgets", b"Members per tier"):
        assert text in page.content
    assert (
        page.content.count(b'<svg xmlns="http://www.w3.org/2000/svg" role="img"') == 6
    )  # 3 a currency
    assert b"<script" not in page.content.split(b'id="content-main"')[1]
    assert b"cdn" not in page.content.lower()
    # The models are still there, under the figures.
    assert reverse("admin:members_member_changelist").encode() in page.content


def test_staff_without_the_dashboard_see_the_list_of_models(staff, seeded):
    page = staff("Support").get(reverse("admin:index"))
    assert page.status_code == 200
    assert "currencies" not in page.context
    assert b"Outstanding liability" not in page.content
    assert reverse("admin:members_member_changelist").encode() in page.content


def test_the_dashboards_old_address_leads_home(staff, db):
    response = staff("Finance").get(reverse("admin:cashback_dashboard"))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")


def test_the_figures_per_day_are_the_ledgers(staff, seeded):
    """Earned and redeemed each day, and the liability at each day's end, summed here entry
    by entry from the ledger; never one currency's amounts added to another's."""
    tz = timezone.get_current_timezone()
    earned: dict[tuple, Decimal] = defaultdict(Decimal)
    redeemed: dict[tuple, Decimal] = defaultdict(Decimal)
    entries = list(LedgerEntry.objects.select_related("card"))
    for entry in entries:
        key = (entry.card.currency, entry.created_at.astimezone(tz).date())
        if entry.entry_type == EntryType.EARNING:
            earned[key] += entry.amount + entry.pending_amount
        if entry.entry_type == EntryType.REDEMPTION:
            redeemed[key] -= entry.amount

    page = staff("Finance").get(reverse("admin:index"))
    figures = {f.currency: f for f in page.context["currencies"]}
    for currency, shown in figures.items():
        assert len(shown.days) == 30
        assert shown.days[-1].day == timezone.localdate()
        for day in shown.days:
            assert day.earned == earned[(currency, day.day)], day
            assert day.redeemed == redeemed[(currency, day.day)], day
            held = sum(
                (
                    e.amount
                    for e in entries
                    if e.card.currency == currency and e.created_at.astimezone(tz).date() <= day.day
                ),
                Decimal(0),
            )
            assert day.liability == held, day
        wallets = Wallet.objects.filter(card__currency=currency)
        assert shown.liability == sum((w.balance for w in wallets), Decimal(0))
        assert shown.liability == shown.days[-1].liability
        assert shown.wallets == wallets.count()
        assert shown.earned == sum(d.earned for d in shown.days)

    tnd, eur = figures["TND"], figures["EUR"]
    assert (tnd.earned, tnd.redeemed, tnd.liability) == (
        Decimal(67),
        Decimal("19.5"),
        Decimal("47.5"),
    )
    assert (eur.earned, eur.liability) == (Decimal(2), Decimal(2))
    assert tnd.days[-6].liability == Decimal(
        22
    )  # at the end of five days ago: 38 earned, 16 redeemed
    assert b'data-figure="liability">47.500 <small>TND' in page.content
    assert b'data-figure="liability">2.00 <small>EUR' in page.content


def test_expiring_cashback_is_what_lots_have_left_in_the_next_30_days(staff, seeded):
    now = timezone.now()
    page = staff("Finance").get(reverse("admin:index"))
    tnd = next(f for f in page.context["currencies"] if f.currency == "TND")
    lots = Lot.objects.filter(
        remaining__gt=0, expires_at__gt=now, expires_at__lte=now + timedelta(days=30)
    )
    assert tnd.expiring == sum((lot.remaining for lot in lots), Decimal(0)) == Decimal("47.5")
    assert sum(amount for _, amount in tnd.expiring_days) == tnd.expiring
    soonest = min(lot.expires_at for lot in lots if lot.expires_at is not None)
    assert dict(tnd.expiring_days)[timezone.localdate(soonest)] > 0


def test_campaigns_tiers_and_webhooks(staff, seeded):
    page = staff("Finance").get(reverse("admin:index"))
    campaigns = [
        (c.rule.name, c.budget, c.spent, c.remaining, c.used_percent, c.uses)
        for c in page.context["campaigns"]
    ]
    assert campaigns == [
        ("Coffee bonus", Decimal(200), Decimal(180), Decimal(20), 90, 120),
        ("Weekend double", Decimal(500), Decimal("187.25"), Decimal("312.75"), 37, 41),
    ]
    assert b"<td>120</td>" in page.content
    [(card, counts)] = page.context["tiers"]
    assert card == seeded.card
    assert [(c.tier.name, c.members) for c in counts] == [
        ("Silver", 2),
        ("Gold", 2),
        ("Platinum", 0),
    ]
    webhooks = page.context["webhooks"]
    assert (webhooks.delivered, webhooks.pending, webhooks.failed, webhooks.backlog) == (
        2,
        1,
        1,
        1,
    )
    age = webhooks.oldest_pending_age
    assert timedelta(minutes=39) < age < timedelta(minutes=42)


def test_an_inactive_rule_or_one_without_a_budget_is_no_campaign(staff, seeded):
    seeded.rule.active = False
    seeded.rule.save()
    page = staff("Finance").get(reverse("admin:index"))
    assert [c.rule.name for c in page.context["campaigns"]] == ["Coffee bonus"]


def test_the_dashboard_reads_as_many_times_however_much_history(staff, merchant, seeded):
    client = staff("Finance")
    with CaptureQueriesContext(connection) as before:
        client.get(reverse("admin:index"))
    for _ in range(5):
        member = MemberFactory.create(app=merchant.app)
        give_balance(app=merchant.app, card=seeded.card, member=member, purchase="50")
    with CaptureQueriesContext(connection) as after:
        client.get(reverse("admin:index"))
    assert len(after) == len(before)
