"""The member page of the back office: the member's wallets, tiers, expiries and latest
entries, and the PIN's lock, which staff who may change members can lift."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cashback.models import LedgerEntry
from members.models import Member
from tests.cashback.back_office_seed import seed_back_office
from tests.helpers import give_balance


@pytest.fixture
def seeded(merchant):
    return seed_back_office(merchant.app)


@pytest.fixture
def member(seeded) -> Member:
    return seeded.members[0]  # wallets on both cards, Gold on the dinar one, PIN locked


def page_url(member):
    return reverse("admin:members_member_change", args=[member.pk])


def unlock_url(member):
    return reverse("admin:members_member_unlock_pin", args=[member.pk])


@pytest.fixture
def staff(client, django_user_model):
    def login(role=None):
        if role is None:
            user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
        else:
            user = django_user_model.objects.create_user(f"user-{role}", password="pw")
            user.is_staff = True
            user.save()
            user.groups.add(Group.objects.get(name=role))
        client.force_login(user)
        return client, user

    return login


def test_the_member_page_shows_each_wallet_with_its_tier(staff, seeded, member):
    client, _ = staff("Support")
    page = client.get(page_url(member))
    assert page.status_code == 200
    rows = {row.card.name: row for row in page.context["summary"].wallets}
    gold, euro = rows["Gold card"], rows["Euro card"]
    # Earned 10 + 4 + 7.5 + 5, redeemed 6.
    assert (gold.balance, gold.pending_balance) == (Decimal("20.5"), Decimal(0))
    assert gold.tier is not None
    assert gold.tier.tier.name == "Gold"
    assert (euro.balance, euro.tier) == (Decimal(2), None)
    content = page.content.decode()
    assert 'data-figure="balance">20.500 TND' in content
    assert 'data-figure="balance">2.00 EUR' in content
    assert 'data-figure="tier">Gold' in content
    assert 'data-figure="tier">—' in content


def test_the_member_page_shows_the_soonest_expiries_and_the_latest_entries(
    staff, merchant, seeded, member
):
    for _ in range(20):
        give_balance(app=merchant.app, card=seeded.euro_card, member=member, purchase="10")
    client, _ = staff("Support")
    summary = client.get(page_url(member)).context["summary"]
    expiries = [(e.expires_at, e.amount) for e in summary.expiries]
    assert expiries == sorted(expiries)
    assert expiries[0][0] > timezone.now()
    # The dinar lots with something left (the oldest partly redeemed); euro lots never expire.
    assert [amount for _, amount in expiries] == [
        Decimal(4),
        Decimal(4),
        Decimal("7.5"),
        Decimal(5),
    ]
    newest = LedgerEntry.objects.filter(wallet__member=member).order_by("-created_at", "-id")
    assert [row.entry.pk for row in summary.entries] == [e.pk for e in newest[:20]]


def test_the_pin_lock_shows_with_the_unlock_button_for_staff_who_may_change_members(staff, member):
    client, _ = staff()
    page = client.get(page_url(member))
    assert b'data-pin-state="locked"' in page.content
    assert b'value="Unlock PIN"' in page.content
    assert unlock_url(member).encode() in page.content


def test_unlocking_clears_the_lock_and_the_count_once_and_logs_it(staff, member):
    Member.objects.filter(pk=member.pk).update(pin_failed_attempts=3)
    client, user = staff()
    response = client.post(unlock_url(member), follow=True)
    assert response.redirect_chain == [(page_url(member), 302)]
    member.refresh_from_db()
    assert (member.pin_locked_until, member.pin_failed_attempts) == (None, 0)
    assert member.pin_matches("4321")  # the PIN itself stays
    assert b'data-pin-state="unlocked"' in response.content
    assert b'value="Unlock PIN"' not in response.content
    [log] = LogEntry.objects.filter(object_id=str(member.pk))
    assert (log.user, log.action_flag) == (user, CHANGE)
    assert "Unlocked the PIN" in log.get_change_message()

    again = client.post(unlock_url(member), follow=True)
    assert "was not locked; nothing changed" in again.content.decode()
    assert LogEntry.objects.filter(object_id=str(member.pk)).count() == 1


@pytest.mark.parametrize("role", ["Support", "Finance"])
def test_only_staff_who_may_change_members_unlock_a_pin(staff, member, role):
    client, _ = staff(role)
    page = client.get(page_url(member))
    assert b'data-pin-state="locked"' in page.content
    assert b'value="Unlock PIN"' not in page.content
    assert client.post(unlock_url(member)).status_code == 403
    member.refresh_from_db()
    assert member.pin_locked_until is not None
    assert not LogEntry.objects.exists()


def test_unlocking_takes_a_post_with_its_csrf_token(django_user_model, member):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get(unlock_url(member)).status_code == 405
    assert client.post(unlock_url(member)).status_code == 403
    member.refresh_from_db()
    assert member.pin_locked_until is not None
    page = client.get(page_url(member))
    token = page.context["csrf_token"]
    assert client.post(unlock_url(member), {"csrfmiddlewaretoken": token}).status_code == 302
    member.refresh_from_db()
    assert member.pin_locked_until is None


def test_a_lock_that_ran_out_shows_as_unlocked(staff, member):
    Member.objects.filter(pk=member.pk).update(
        pin_locked_until=timezone.now() - timedelta(minutes=1)
    )
    client, _ = staff()
    assert b'data-pin-state="unlocked"' in client.get(page_url(member)).content
