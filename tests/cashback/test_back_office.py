"""The back office in the Django admin: pages, actions and what each role may do."""

import csv
import io
from datetime import timedelta
from decimal import Decimal
from uuid import uuid4

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from apps_auth.models import ApiKey, App
from cards.models import Card
from cashback.ledger_check import ledger_verify
from cashback.models import LedgerEntry, Wallet
from cashback.roles import roles_ensure
from cashback.services import cashback_earn, cashback_expire_due, cashback_redeem, cashback_reverse
from members.services import MemberRef
from tests.factories import CardFactory, MemberFactory
from tests.helpers import give_balance


@pytest.fixture
def wallet(merchant):
    card = CardFactory.create(app=merchant.app)
    member = MemberFactory.create(app=merchant.app, email="amira@example.com", phone="+21620123456")
    give_balance(app=merchant.app, card=card, member=member, purchase="65")  # 3.250
    return Wallet.objects.get(member=member, card=card)


@pytest.fixture
def staff(client, django_user_model):
    """A logged-in staff client in the given role ("Support", "Finance", None or "superuser")."""

    def login(role):
        if role == "superuser":
            user = django_user_model.objects.create_superuser(f"root-{role}", "r@x.com", "pw")
        else:
            user = django_user_model.objects.create_user(f"user-{role}", password="pw")
            user.is_staff = True
            user.save()
            if role:
                user.groups.add(Group.objects.get(name=role))
        client.force_login(user)
        return client, user

    return login


def test_roles_exist_with_exactly_their_permissions(db):
    roles_ensure()  # idempotent: migrate ran it already

    def perms(name):
        return set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))

    views = {"view_app", "view_card", "view_member", "view_wallet", "view_ledgerentry"}
    assert perms("Support") == views | {"adjust_wallet", "view_adjustmentrequest"}
    assert perms("Finance") == views | {"export_ledger", "view_dashboard"}


# Adjustments


def adjust_url(wallet):
    return reverse("admin:cashback_wallet_adjust", args=[wallet.pk])


def test_support_credits_a_wallet_with_a_reason(staff, wallet):
    client, user = staff("Support")
    assert client.get(adjust_url(wallet)).status_code == 200
    response = client.post(
        adjust_url(wallet), {"amount": "1.750", "reason": "Missed receipt", "token": uuid4()}
    )
    assert response.status_code == 302
    entry = LedgerEntry.objects.get(entry_type="adjustment")
    assert entry.amount == Decimal("1.75")
    assert entry.balance_after == Decimal(5)
    assert entry.created_by == user
    assert entry.metadata == {"reason": "Missed receipt"}
    assert entry.event == "cashback_adjusted"
    wallet.refresh_from_db()
    assert wallet.balance == Decimal(5)
    assert ledger_verify().mismatches == []
    listing = client.get(response["Location"])
    assert [e.pk for e in listing.context["cl"].result_list] == [entry.pk, entry.pk - 1]


def test_a_debit_cannot_take_the_balance_below_zero(staff, wallet):
    client, _ = staff("Support")
    response = client.post(
        adjust_url(wallet), {"amount": "-3.251", "reason": "Clawback", "token": uuid4()}
    )
    assert response.status_code == 200
    assert b"A debit cannot take the balance below zero." in response.content
    assert not LedgerEntry.objects.filter(entry_type="adjustment").exists()
    ok = client.post(
        adjust_url(wallet), {"amount": "-3.250", "reason": "Clawback", "token": uuid4()}
    )
    assert ok.status_code == 302
    wallet.refresh_from_db()
    assert wallet.balance == 0


@pytest.mark.parametrize(
    ("amount", "reason", "field"),
    [("0", "Nothing", "amount"), ("1.0001", "Too precise", "amount"), ("1", "", "reason")],
)
def test_an_adjustment_needs_a_real_amount_and_a_reason(staff, wallet, amount, reason, field):
    client, _ = staff("Support")
    response = client.post(
        adjust_url(wallet), {"amount": amount, "reason": reason, "token": uuid4()}
    )
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert LedgerEntry.objects.count() == 1


@pytest.mark.parametrize("role", ["Finance", None])
def test_only_support_may_adjust(staff, wallet, role):
    client, _ = staff(role)
    assert client.get(adjust_url(wallet)).status_code == 403
    assert client.post(adjust_url(wallet), {"amount": "5", "reason": "x"}).status_code == 403
    assert LedgerEntry.objects.count() == 1


def test_the_wallet_page_offers_the_adjustment_to_support_only(staff, wallet):
    client, _ = staff("Support")
    page = client.get(reverse("admin:cashback_wallet_change", args=[wallet.pk]))
    assert page.status_code == 200
    assert adjust_url(wallet).encode() in page.content


# Export


def test_finance_exports_the_filtered_ledger_as_streamed_csv(staff, merchant, wallet):
    other = CardFactory.create(app=merchant.app)
    give_balance(app=merchant.app, card=other, member=wallet.member, purchase="100")
    client, _ = staff("Finance")
    url = reverse("admin:cashback_ledgerentry_export") + f"?card__id__exact={wallet.card_id}"
    response = client.get(url)
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][:3] == ["transaction_id", "created_at", "app_id"]
    assert len(rows) == 2  # the header and this card's one entry
    assert rows[1][6] == "amira@example.com"
    assert Decimal(rows[1][9]) == Decimal("3.25")


@pytest.mark.parametrize("role", ["Support", None])
def test_only_finance_may_export(staff, wallet, role):
    client, _ = staff(role)
    assert client.get(reverse("admin:cashback_ledgerentry_export")).status_code == 403


# Dashboard


def test_finance_sees_the_dashboard_with_totals_and_a_chart(staff, merchant, wallet):
    from cashback.services import cashback_redeem

    cashback_redeem(
        app=merchant.app, card=wallet.card, member_id=wallet.member.pk, amount=Decimal(1)
    )
    client, _ = staff("Finance")
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    [row] = [r for r in response.context["totals"] if r.card == wallet.card]
    assert (row.members, row.earned, row.redeemed, row.liability) == (
        1,
        Decimal("3.25"),
        Decimal(1),
        Decimal("2.25"),
    )
    assert b"<svg" in response.content
    assert b"<rect" in response.content
    assert b"cdn" not in response.content.lower()
    assert b"<th>Pending</th>" in response.content
    assert b"<th>Expired</th>" in response.content
    [figures] = response.context["currencies"]
    assert len(figures.days) == 30


@pytest.mark.parametrize("role", ["Support", None])
def test_only_finance_may_see_the_dashboard(staff, role, db):
    client, _ = staff(role)
    home = client.get(reverse("admin:index"))
    assert home.status_code == 200
    assert "totals" not in home.context
    assert b"Outstanding liability" not in home.content


# Lists and searches


@pytest.mark.parametrize("role", ["Support", "Finance"])
def test_both_roles_read_members_wallets_and_the_ledger(staff, wallet, role):
    client, _ = staff(role)
    for name in ("members_member", "cashback_wallet", "cashback_ledgerentry", "cards_card"):
        assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200
    card_change = client.post(
        reverse("admin:cards_card_change", args=[wallet.card_id]), {"name": "Hacked"}
    )
    assert card_change.status_code == 403
    assert Card.objects.get(pk=wallet.card_id).name != "Hacked"


def test_support_finds_a_member_by_email_phone_or_name(staff, wallet):
    client, _ = staff("Support")
    url = reverse("admin:members_member_changelist")
    for term in ("Amira@Example.com", "20 123 456", wallet.member.name[:4]):
        response = client.get(url, {"q": term})
        assert list(response.context["cl"].result_list) == [wallet.member], term


def test_the_ledger_is_searched_by_reference_or_member_email(staff, merchant, wallet):
    from cashback.services import cashback_earn
    from members.services import MemberRef

    cashback_earn(
        app=merchant.app,
        card=wallet.card,
        member_ref=MemberRef(member_id=wallet.member_id),
        purchase_amount=Decimal(20),
        reference="ORDER-77",
    )
    client, _ = staff("Support")
    url = reverse("admin:cashback_ledgerentry_changelist")
    by_reference = client.get(url, {"q": "ORDER-77"}).context["cl"].result_list
    assert [e.reference for e in by_reference] == ["ORDER-77"]
    by_email = client.get(url, {"q": "AMIRA@example.com"}).context["cl"].result_list
    assert len(by_email) == 2
    for query in ({"entry_type__exact": "earning"}, {"app__id__exact": merchant.app.pk}):
        assert client.get(url, query).status_code == 200


# Apps, keys and cards


def test_creating_an_app_shows_its_key_once(staff, client):
    client, _ = staff("superuser")
    response = client.post(
        reverse("admin:apps_auth_app_add"),
        {
            "name": "Corner shop",
            "mode": "live",
            "scopes": ["card_read"],
            "rate_limit_per_minute": 60,
            "is_active": "on",
            "api_keys-TOTAL_FORMS": "0",
            "api_keys-INITIAL_FORMS": "0",
        },
        follow=True,
    )
    app = App.objects.get(name="Corner shop")
    [message] = [str(m) for m in response.context["messages"] if "New API key" in str(m)]
    raw_key = message.split(": ")[1].split(" ")[0]
    assert raw_key.startswith("live_")
    assert app.scopes == ["card_read"]
    headers = {"X-App-Id": app.app_id, "X-Api-Key": raw_key}
    assert client.get("/api/v1/cashback/cards", headers=headers).status_code == 200
    page = client.get(reverse("admin:apps_auth_app_change", args=[app.pk]))
    assert raw_key.encode() not in page.content


def test_staff_set_an_apps_hourly_quota_of_one_time_codes(staff, merchant):
    client, _ = staff("superuser")
    url = reverse("admin:apps_auth_app_change", args=[merchant.app.pk])
    page = client.get(url)
    assert b'name="otp_hourly_quota"' in page.content
    response = client.post(
        url,
        {
            "name": merchant.app.name,
            "scopes": merchant.app.scopes,
            "rate_limit_per_minute": merchant.app.rate_limit_per_minute,
            "otp_hourly_quota": 25,
            "is_active": "on",
            "api_keys-TOTAL_FORMS": "1",
            "api_keys-INITIAL_FORMS": "1",
            "api_keys-0-id": merchant.app.api_keys.get().pk,
            "api_keys-0-app": merchant.app.pk,
        },
    )
    assert response.status_code == 302, response.context["adminform"].errors
    merchant.app.refresh_from_db()
    assert merchant.app.otp_hourly_quota == 25


def test_admin_actions_issue_and_revoke_keys(staff, merchant):
    client, _ = staff("superuser")
    client.post(
        reverse("admin:apps_auth_app_changelist"),
        {"action": "issue_key", "_selected_action": [merchant.app.pk]},
    )
    assert merchant.app.api_keys.count() == 2
    first = merchant.app.api_keys.order_by("id").first()
    client.post(
        reverse("admin:apps_auth_apikey_changelist"),
        {"action": "revoke", "_selected_action": [first.pk]},
    )
    assert ApiKey.objects.get(pk=first.pk).revoked_at is not None
    assert merchant.client.get("/api/v1/cashback/cards").status_code == 401


def test_a_card_with_wallets_is_deactivated_not_deleted(staff, wallet):
    client, _ = staff("superuser")
    delete = client.post(reverse("admin:cards_card_delete", args=[wallet.card_id]), {"post": "yes"})
    assert delete.status_code == 403
    client.post(
        reverse("admin:cards_card_changelist"),
        {"action": "deactivate", "_selected_action": [wallet.card_id]},
    )
    assert Card.objects.get(pk=wallet.card_id).is_active is False


def test_the_card_form_checks_decimals_against_the_currency(staff, merchant):
    client, _ = staff("superuser")
    response = client.post(
        reverse("admin:cards_card_add"),
        {
            "app": merchant.app.pk,
            "name": "Euro card",
            "cashback_percentage": "150",
            "cashback_min_amount": "1.001",
            "currency": "EUR",
        },
    )
    errors = response.context["adminform"].form.errors
    assert "cashback_min_amount" in errors
    assert "cashback_percentage" in errors
    assert not Card.objects.filter(name="Euro card").exists()


def test_ledger_entries_stay_read_only_even_for_superusers(staff, wallet):
    client, _ = staff("superuser")
    entry = LedgerEntry.objects.get()
    assert client.get(reverse("admin:cashback_ledgerentry_add")).status_code == 403
    delete = client.post(
        reverse("admin:cashback_ledgerentry_delete", args=[entry.pk]), {"post": "yes"}
    )
    assert delete.status_code == 403
    assert LedgerEntry.objects.filter(pk=entry.pk).exists()


def test_the_dashboard_counts_held_expired_and_reversed_cashback(staff, merchant, member):
    card = CardFactory.create(app=merchant.app, cashback_expiry_days=10, cashback_min_amount=0)
    ref = MemberRef(member_id=member.pk)
    cashback_earn(app=merchant.app, card=card, member_ref=ref, purchase_amount=Decimal(100))
    redeemed = cashback_redeem(app=merchant.app, card=card, member_id=member.pk, amount=Decimal(2))
    cashback_reverse(app=merchant.app, card=card, transaction_id=redeemed.entry.pk)
    cashback_redeem(app=merchant.app, card=card, member_id=member.pk, amount=Decimal(1))
    card.cashback_holding_days = 5
    card.save()
    cashback_earn(app=merchant.app, card=card, member_ref=ref, purchase_amount=Decimal(40))
    cashback_expire_due(as_of=timezone.now() + timedelta(days=11))
    client, _ = staff("Finance")
    totals = client.get(reverse("admin:index")).context["totals"]
    [row] = [r for r in totals if r.card == card]
    assert (row.earned, row.redeemed, row.reversed, row.expired, row.pending, row.liability) == (
        Decimal(7),
        Decimal(3),
        Decimal(2),
        Decimal(4),
        Decimal(2),
        Decimal(0),
    )
