"""Staff adjustments in the back office: a limit, one posting per form, and a second staff
user's approval past a threshold, counted over a window."""

import csv
import io
from datetime import timedelta
from decimal import Decimal
from typing import cast

import pytest
from django.contrib.auth.models import Group
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from cashback.ledger_check import ledger_verify
from cashback.models import AdjustmentRequest, LedgerEntry, Wallet
from cashback.services import cashback_redeem
from cashback.services.adjust import cashback_adjust
from core.errors import InvalidInput
from tests.factories import AppFactory, CardFactory, MemberFactory
from tests.helpers import concurrently, give_balance

LIMIT = Decimal(500)
THRESHOLD = Decimal(100)


@pytest.fixture(autouse=True)
def _adjustment_rules(settings):
    settings.CASHBACK_ADJUSTMENT_MAX_AMOUNT = LIMIT
    settings.CASHBACK_ADJUSTMENT_APPROVAL_THRESHOLD = THRESHOLD


def new_wallet() -> Wallet:
    app = AppFactory.create()
    card = CardFactory.create(app=app, cashback_max_amount=None)
    member = MemberFactory.create(app=app)
    give_balance(app=app, card=card, member=member, purchase="4000")  # 200.000
    return Wallet.objects.get(member=member, card=card)


@pytest.fixture
def wallet(db):
    return new_wallet()


@pytest.fixture
def support(django_user_model):
    """A new logged-in Support client and its user."""

    def login(name):
        user = django_user_model.objects.create_user(name, password="pw", is_staff=True)
        user.groups.add(Group.objects.get(name="Support"))
        client = Client()
        client.force_login(user)
        return client, user

    return login


def adjust_url(wallet):
    return reverse("admin:cashback_wallet_adjust", args=[wallet.pk])


def form_token(client, wallet) -> str:
    """The one-time token of a freshly rendered adjustment form."""
    page = client.get(adjust_url(wallet))
    assert page.status_code == 200
    token = str(page.context["form"]["token"].value())
    assert f'value="{token}"'.encode() in page.content
    return token


def adjust(client, wallet, amount, reason="Goodwill", token=None):
    token = token or form_token(client, wallet)
    return client.post(adjust_url(wallet), {"amount": amount, "reason": reason, "token": token})


def adjustments():
    return list(LedgerEntry.objects.filter(entry_type="adjustment"))


def balance(wallet) -> Decimal:
    return Wallet.objects.get(pk=wallet.pk).balance


def messages_of(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


# The limit


@pytest.mark.parametrize("amount", ["500.001", "-500.001", "999999999999", "-999999999999"])
def test_an_adjustment_over_the_limit_is_refused_and_writes_nothing(support, wallet, amount):
    client, _ = support("sam")
    response = adjust(client, wallet, amount)
    assert response.status_code == 200
    assert "amount" in response.context["form"].errors
    assert "500.000" in str(response.context["form"].errors["amount"])
    assert adjustments() == []
    assert AdjustmentRequest.objects.count() == 0
    assert balance(wallet) == Decimal(200)


def test_the_service_keeps_the_limit_whoever_calls_it(support, wallet):
    _, user = support("sam")
    with pytest.raises(InvalidInput) as refused:
        cashback_adjust(wallet=wallet, amount=Decimal("-500.001"), reason="x", staff_user=user)
    assert "amount" in refused.value.details
    assert AdjustmentRequest.objects.count() == 0
    assert adjustments() == []


def test_an_amount_past_what_the_ledger_can_hold_is_a_form_error(support, wallet):
    client, _ = support("sam")
    response = adjust(client, wallet, "9999999999999999.999")
    assert response.status_code == 200
    assert "amount" in response.context["form"].errors
    assert adjustments() == []
    assert AdjustmentRequest.objects.count() == 0
    assert balance(wallet) == Decimal(200)


# One posting per form


def test_submitting_one_form_twice_posts_once(support, wallet):
    client, user = support("sam")
    token = form_token(client, wallet)
    first = adjust(client, wallet, "10", token=token)
    second = adjust(client, wallet, "10", token=token)
    assert first.status_code == second.status_code == 302
    assert second["Location"] == first["Location"]
    [entry] = adjustments()
    assert "already applied" in " ".join(messages_of(second))
    assert str(entry.pk) in " ".join(messages_of(second))
    assert balance(wallet) == Decimal(210)
    assert ledger_verify().mismatches == []


def test_each_rendered_form_has_its_own_token(support, wallet):
    client, _ = support("sam")
    assert form_token(client, wallet) != form_token(client, wallet)
    adjust(client, wallet, "10")
    adjust(client, wallet, "10")
    assert len(adjustments()) == 2


def test_a_form_refused_once_can_be_corrected_and_sent_again(support, wallet):
    client, _ = support("sam")
    token = form_token(client, wallet)
    refused = adjust(client, wallet, "-200.001", token=token)
    assert refused.status_code == 200
    assert str(refused.context["form"]["token"].value()) == token
    assert adjust(client, wallet, "-20", token=token).status_code == 302
    assert balance(wallet) == Decimal(180)


def test_a_used_token_with_other_values_posts_nothing_more(support, wallet):
    client, _ = support("sam")
    token = form_token(client, wallet)
    adjust(client, wallet, "10", token=token)
    response = adjust(client, wallet, "20", token=token)
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert len(adjustments()) == 1
    assert balance(wallet) == Decimal(210)


@pytest.mark.django_db(transaction=True)
def test_concurrent_submissions_of_one_form_post_once(support, wallet):
    clients = [support(f"sam{i}")[0] for i in range(4)]
    token = form_token(clients[0], wallet)
    responses = concurrently(4, lambda i: adjust(clients[i], wallet, "10", token=token))
    assert [r.status_code for r in responses] == [302] * 4
    assert len(adjustments()) == 1
    assert AdjustmentRequest.objects.count() == 1
    assert balance(wallet) == Decimal(210)
    assert ledger_verify().mismatches == []


# A second pair of eyes


def test_above_the_threshold_nothing_is_posted_until_another_user_approves(support, wallet):
    requester_client, requester = support("sam")
    approver_client, approver = support("alex")
    response = adjust(requester_client, wallet, "100.001", reason="Lost receipts")
    assert response.status_code == 302
    assert "approval" in " ".join(messages_of(response))
    pending = AdjustmentRequest.objects.get()
    assert (pending.status, pending.requested_by, pending.amount) == (
        "pending",
        requester,
        Decimal("100.001"),
    )
    assert adjustments() == []
    assert balance(wallet) == Decimal(200)

    own = requester_client.post(approve_url(pending))
    assert own.status_code == 302
    assert "another" in " ".join(messages_of(own))
    assert adjustments() == []
    assert AdjustmentRequest.objects.get().status == "pending"

    approved = approver_client.post(approve_url(pending))
    assert approved.status_code == 302
    [entry] = adjustments()
    assert entry.amount == Decimal("100.001")
    assert (entry.created_by, entry.approved_by) == (requester, approver)
    assert entry.metadata["reason"] == "Lost receipts"
    pending.refresh_from_db()
    assert (pending.status, pending.decided_by, pending.entry) == ("approved", approver, entry)
    assert pending.decided_at is not None
    assert balance(wallet) == Decimal("300.001")
    assert ledger_verify().mismatches == []

    again = approver_client.post(approve_url(pending))
    assert again.status_code == 302
    assert len(adjustments()) == 1
    assert balance(wallet) == Decimal("300.001")


def test_up_to_the_threshold_an_adjustment_is_posted_at_once(support, wallet):
    client, user = support("sam")
    adjust(client, wallet, "-100")
    [entry] = adjustments()
    assert (entry.created_by, entry.approved_by) == (user, None)
    assert AdjustmentRequest.objects.get().status == "applied"
    assert balance(wallet) == Decimal(100)


def approve_url(adjustment):
    return reverse("admin:cashback_adjustmentrequest_approve", args=[adjustment.pk])


def reject_url(adjustment):
    return reverse("admin:cashback_adjustmentrequest_reject", args=[adjustment.pk])


def test_submitting_a_pending_request_twice_asks_for_approval_once(support, wallet):
    client, _ = support("sam")
    token = form_token(client, wallet)
    adjust(client, wallet, "150", token=token)
    adjust(client, wallet, "150", token=token)
    assert AdjustmentRequest.objects.count() == 1


def test_a_rejected_request_posts_nothing_and_cannot_be_approved_later(support, wallet):
    requester_client, _ = support("sam")
    approver_client, approver = support("alex")
    adjust(requester_client, wallet, "150")
    pending = AdjustmentRequest.objects.get()
    assert approver_client.post(reject_url(pending)).status_code == 302
    pending.refresh_from_db()
    assert (pending.status, pending.decided_by) == ("rejected", approver)
    approver_client.post(approve_url(pending))
    assert AdjustmentRequest.objects.get().status == "rejected"
    assert adjustments() == []
    assert balance(wallet) == Decimal(200)


def test_approval_checks_the_balance_as_it_is_then(support, wallet):
    requester_client, _ = support("sam")
    approver_client, _ = support("alex")
    adjust(requester_client, wallet, "-150")
    pending = AdjustmentRequest.objects.get()
    cashback_redeem(
        app=wallet.app, card=wallet.card, member_id=wallet.member.pk, amount=Decimal("60")
    )  # 140 left
    response = approver_client.post(approve_url(pending))
    assert "below zero" in " ".join(messages_of(response))
    assert adjustments() == []
    assert AdjustmentRequest.objects.get().status == "pending"
    assert balance(wallet) == Decimal(140)


def test_only_staff_who_may_adjust_can_approve(client, django_user_model, support, wallet):
    requester_client, _ = support("sam")
    adjust(requester_client, wallet, "150")
    pending = AdjustmentRequest.objects.get()
    finance = django_user_model.objects.create_user("fin", password="pw", is_staff=True)
    finance.groups.add(Group.objects.get(name="Finance"))
    client.force_login(finance)
    assert client.post(approve_url(pending)).status_code == 403
    assert AdjustmentRequest.objects.get().status == "pending"


def test_support_sees_the_pending_requests(support, wallet):
    requester_client, _ = support("sam")
    approver_client, _ = support("alex")
    adjust(requester_client, wallet, "150")
    pending = AdjustmentRequest.objects.get()
    listing = approver_client.get(reverse("admin:cashback_adjustmentrequest_changelist"))
    assert listing.status_code == 200
    assert [r.pk for r in listing.context["cl"].result_list] == [pending.pk]
    page = approver_client.get(
        reverse("admin:cashback_adjustmentrequest_change", args=[pending.pk])
    )
    assert page.status_code == 200
    assert approve_url(pending).encode() in page.content
    assert reject_url(pending).encode() in page.content


@pytest.mark.django_db(transaction=True)
def test_two_approvers_at_once_post_once(support, wallet):
    requester_client, _ = support("sam")
    adjust(requester_client, wallet, "150")
    pending = AdjustmentRequest.objects.get()
    approvers = [support(f"alex{i}")[0] for i in range(4)]
    responses = concurrently(4, lambda i: approvers[i].post(approve_url(pending)))
    assert [r.status_code for r in responses] == [302] * 4
    assert len(adjustments()) == 1
    assert balance(wallet) == Decimal(350)
    assert ledger_verify().mismatches == []


def test_both_staff_users_show_in_the_entry_page_and_the_export(support, wallet, django_user_model):
    requester_client, _ = support("sam")
    approver_client, _ = support("alex")
    adjust(requester_client, wallet, "150")
    approver_client.post(approve_url(AdjustmentRequest.objects.get()))
    [entry] = adjustments()
    root = django_user_model.objects.create_superuser("root", "r@x.com", "pw")
    client = Client()
    client.force_login(root)
    page = client.get(reverse("admin:cashback_ledgerentry_change", args=[entry.pk]))
    assert b"sam" in page.content
    assert b"alex" in page.content
    export = client.get(reverse("admin:cashback_ledgerentry_export"))
    text = cast(StreamingHttpResponse, export).getvalue().decode()
    rows = {row["transaction_id"]: row for row in csv.DictReader(io.StringIO(text))}
    assert (rows[str(entry.pk)]["staff_user"], rows[str(entry.pk)]["approved_by"]) == (
        "sam",
        "alex",
    )


# Splitting does not avoid the second pair of eyes


@pytest.fixture
def threshold_1000(settings):
    settings.CASHBACK_ADJUSTMENT_MAX_AMOUNT = Decimal(10000)
    settings.CASHBACK_ADJUSTMENT_APPROVAL_THRESHOLD = Decimal(1000)
    settings.CASHBACK_ADJUSTMENT_APPROVAL_WINDOW_HOURS = 24


def submit(wallet, amount, user) -> AdjustmentRequest:
    return cashback_adjust(
        wallet=wallet, amount=Decimal(amount), reason="Goodwill", staff_user=user
    ).request


def statuses() -> list[str]:
    return [r.status for r in AdjustmentRequest.objects.order_by("created_at", "id")]


def test_a_second_adjustment_by_one_user_on_one_wallet_past_the_threshold_waits(
    threshold_1000, support, wallet
):
    _, sam = support("sam")
    submit(wallet, "600", sam)
    submit(wallet, "-600", sam)  # either way, the amounts add up
    assert statuses() == ["applied", "pending"]
    assert balance(wallet) == Decimal(800)


def test_a_second_adjustment_by_one_user_on_another_wallet_past_the_threshold_waits(
    threshold_1000, support, wallet
):
    _, sam = support("sam")
    other = new_wallet()
    submit(wallet, "600", sam)
    submit(other, "600", sam)
    assert statuses() == ["applied", "pending"]
    assert (balance(wallet), balance(other)) == (Decimal(800), Decimal(200))


def test_a_second_adjustment_on_one_wallet_by_another_user_past_the_threshold_waits(
    threshold_1000, support, wallet
):
    _, sam = support("sam")
    _, alex = support("alex")
    submit(wallet, "600", sam)
    submit(wallet, "600", alex)
    assert statuses() == ["applied", "pending"]
    assert balance(wallet) == Decimal(800)


def test_within_the_threshold_adjustments_by_others_on_other_wallets_post_at_once(
    threshold_1000, support, wallet
):
    _, sam = support("sam")
    _, alex = support("alex")
    submit(wallet, "600", sam)
    submit(wallet, "400", sam)  # 1000: not past the threshold
    submit(new_wallet(), "600", alex)  # alex, on another wallet: a window of its own
    assert statuses() == ["applied", "applied", "applied"]


def test_an_approved_adjustment_does_not_count_toward_the_window(threshold_1000, support, wallet):
    """A second person saw it already; what was posted at once still counts."""
    approver_client, _ = support("alex")
    _, sam = support("sam")
    large = submit(wallet, "1500", sam)
    assert approver_client.post(approve_url(large)).status_code == 302
    assert AdjustmentRequest.objects.get(pk=large.pk).status == "approved"
    submit(wallet, "600", sam)
    submit(wallet, "600", sam)
    assert statuses() == ["approved", "applied", "pending"]
    assert balance(wallet) == Decimal(2300)


def test_pending_and_rejected_adjustments_do_not_count_toward_the_window(
    threshold_1000, support, wallet
):
    client, sam = support("sam")
    submit(wallet, "1500", sam)
    withdrawn = submit(wallet, "1200", sam)
    assert client.post(reject_url(withdrawn)).status_code == 302
    submit(wallet, "600", sam)
    submit(wallet, "600", sam)
    assert statuses() == ["pending", "rejected", "applied", "pending"]
    assert balance(wallet) == Decimal(800)


def test_an_adjustment_older_than_the_window_no_longer_counts(
    threshold_1000, settings, support, wallet
):
    settings.CASHBACK_ADJUSTMENT_APPROVAL_WINDOW_HOURS = 2
    _, sam = support("sam")
    first = submit(wallet, "600", sam)
    AdjustmentRequest.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - timedelta(hours=1, minutes=59)
    )
    assert submit(wallet, "600", sam).status == "pending"  # still within the window
    AdjustmentRequest.objects.filter(pk=first.pk).update(
        created_at=timezone.now() - timedelta(hours=2, minutes=1)
    )
    assert submit(wallet, "600", sam).status == "applied"
    assert balance(wallet) == Decimal(1400)


@pytest.mark.django_db(transaction=True)
def test_one_user_adjusting_two_wallets_at_once_gets_one_past_the_threshold_approved(
    threshold_1000, support, wallet
):
    """The requester's row is locked after the wallet's: two submissions by one user on two
    wallets cannot both find an empty window."""
    _, sam = support("sam")
    wallets = [wallet, new_wallet()]
    requests = concurrently(2, lambda i: submit(wallets[i], "600", sam))
    assert sorted(r.status for r in requests) == ["applied", "pending"]
    assert sorted(balance(w) for w in wallets) == [Decimal(200), Decimal(800)]
    assert ledger_verify().mismatches == []
