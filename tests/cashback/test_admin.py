import pytest
from django.urls import reverse

from cashback.models import LedgerEntry, Wallet
from tests.factories import CardFactory, MemberFactory
from tests.helpers import give_balance


@pytest.fixture
def staff_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("staff", "staff@example.com", "pw")
    client.force_login(user)
    return client


@pytest.fixture
def ledger(merchant):
    card = CardFactory.create(app=merchant.app)
    member = MemberFactory.create(app=merchant.app)
    give_balance(app=merchant.app, card=card, member=member, purchase="100")
    return card, member


@pytest.mark.parametrize(
    "model",
    [
        "apps_auth_app",
        "apps_auth_apikey",
        "members_member",
        "cards_card",
        "cashback_wallet",
        "cashback_ledgerentry",
    ],
)
def test_every_model_has_an_admin_list(staff_client, ledger, model):
    assert staff_client.get(reverse(f"admin:{model}_changelist")).status_code == 200


def test_staff_can_set_a_cards_percentage_limits_and_pin_option(staff_client, ledger):
    card, _ = ledger
    url = reverse("admin:cards_card_change", args=[card.pk])
    assert staff_client.get(url).status_code == 200
    response = staff_client.post(
        url,
        {
            "app": card.app_id,
            "unique_identifier": card.unique_identifier,
            "name": card.name,
            "description": card.description,
            "cashback_percentage": "7.5",
            "cashback_min_amount": "5",
            "cashback_max_amount": "",
            "allows_pin_redemption": "",
            "cashback_holding_days": "0",
            "cashback_expiry_policy": "rolling",
            "tier_period_days": "365",
            "tier_retention_days": "365",
            "time_zone": "Africa/Tunis",
            "currency": "TND",
            "is_active": "on",
        },
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    card.refresh_from_db()
    assert str(card.cashback_percentage) == "7.5000"
    assert card.cashback_max_amount is None
    assert card.allows_pin_redemption is False


def test_a_members_page_shows_their_wallets(staff_client, ledger):
    _, member = ledger
    response = staff_client.get(reverse("admin:members_member_change", args=[member.pk]))
    assert response.status_code == 200
    assert b'data-figure="balance">5.000 TND' in response.content


def test_a_wallet_links_to_its_history(staff_client, ledger):
    wallet = Wallet.objects.get()
    response = staff_client.get(reverse("admin:cashback_wallet_changelist"))
    assert f"?wallet__id__exact={wallet.pk}".encode() in response.content
    history = staff_client.get(
        reverse("admin:cashback_ledgerentry_changelist") + f"?wallet__id__exact={wallet.pk}"
    )
    assert history.status_code == 200


def test_ledger_entries_are_read_only_in_the_admin(staff_client, ledger):
    entry = LedgerEntry.objects.get()
    assert staff_client.get(reverse("admin:cashback_ledgerentry_add")).status_code == 403
    delete = reverse("admin:cashback_ledgerentry_delete", args=[entry.pk])
    assert staff_client.post(delete, {"post": "yes"}).status_code == 403
    change = reverse("admin:cashback_ledgerentry_change", args=[entry.pk])
    staff_client.post(change, {"amount": "999"})
    entry.refresh_from_db()
    assert str(entry.amount) == "5.0000"
    assert LedgerEntry.objects.count() == 1
