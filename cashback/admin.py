import csv
import json
import uuid
from typing import cast

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import connections
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

import cashback.programme_admin  # noqa: F401  (registers the programme's admin)
from cards.models import Card
from cashback.member_summary import member_summary
from cashback.models import AdjustmentRequest, AdjustmentStatus, LedgerEntry, Lot, Wallet
from cashback.services.adjust import (
    Adjustment,
    adjustment_limit,
    adjustment_request_approve,
    adjustment_request_reject,
    cashback_adjust,
)
from cashback.services.tiers import member_tier_staff_set
from core import money
from core.admin import ReadOnlyAdmin
from core.errors import DomainError
from core.spreadsheet import spreadsheet_cell
from members.admin import MemberAdmin
from members.models import Member
from programme.models import Tier


class MemberWithWalletsAdmin(MemberAdmin):
    """The member's page, with their cashback (members know nothing of wallets): every wallet
    with its balances and tier, the soonest expiries and the latest entries, above the PIN."""

    change_form_template = "admin/cashback/member/change_form.html"

    def get_urls(self):
        return [
            path(
                "<path:object_id>/set-tier/",
                self.admin_site.admin_view(self.set_tier_view),
                name="members_member_set_tier",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        member = self.get_object(request, object_id)
        if member is not None:
            summary = member_summary(member=member)
            extra_context = {
                **(extra_context or {}),
                "summary": summary,
                "can_view_wallets": request.user.has_perm("cashback.view_wallet"),
                "can_view_entries": request.user.has_perm("cashback.view_ledgerentry"),
                "can_set_tier": request.user.has_perm("programme.change_membertier"),
                "tier_cards": [
                    (row.card, list(Tier.objects.filter(app_id=row.card.app_id, card=row.card)))
                    for row in summary.wallets
                    if Tier.objects.filter(app_id=row.card.app_id, card=row.card).exists()
                ],
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def set_tier_view(self, request, object_id):
        """Staff put the member in a tier of one of its cards (or none), with a reason
        (`member_tier_staff_set`: a `member.tier_changed` event, reason `staff`); POST, with
        the permission to change members' tiers; recorded in the admin's log."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("programme.change_membertier"):
            raise PermissionDenied
        member = self.get_object(request, object_id)
        if member is None:
            raise Http404
        back = reverse("admin:members_member_change", args=[member.pk])
        card_id, tier_id = request.POST.get("card", ""), request.POST.get("tier", "")
        card = None
        if card_id.isdigit() and (not tier_id or tier_id.isdigit()):
            card = Card.objects.filter(app_id=member.app_id, pk=int(card_id)).first()
        tier = None
        if card is not None and tier_id:
            tier = Tier.objects.filter(app_id=card.app_id, card=card, pk=tier_id).first()
        reason = (request.POST.get("reason") or "").strip()
        if card is None or (tier_id and tier is None) or not reason:
            self.message_user(
                request, "Choose a card, a tier (or none) and give a reason.", messages.ERROR
            )
            return HttpResponseRedirect(back)
        member_tier_staff_set(card=card, member_id=member.pk, tier=tier, note=reason[:500])
        name = tier.name if tier is not None else "no tier"
        self.log_change(request, member, f"Set the tier on {card.name} to {name}: {reason[:200]}")
        self.message_user(request, f"{member} is now in {name} on {card.name}.", messages.SUCCESS)
        return HttpResponseRedirect(back)


admin.site.unregister(Member)
admin.site.register(Member, MemberWithWalletsAdmin)


class AdjustmentForm(forms.Form):
    # A new one each time the form is shown: submitting the same form twice posts once.
    token = forms.UUIDField(
        widget=forms.HiddenInput,
        initial=uuid.uuid4,
        error_messages={"required": "This form is incomplete; open the adjustment form again."},
    )
    amount = forms.DecimalField(
        max_digits=20,
        decimal_places=4,
        help_text="Positive to credit the wallet, negative to debit it.",
    )
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why: kept on the ledger entry with your name.",
    )


@admin.register(Wallet)
class WalletAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "member",
        "card",
        "balance_shown",
        "pending_shown",
        "history",
        "updated_at",
    ]
    list_filter = ["card"]
    search_fields = ["=member__email", "=member__phone", "member__name"]
    readonly_fields = [
        "app",
        "member",
        "card",
        "balance",
        "pending_balance",
        "created_at",
        "updated_at",
    ]
    list_select_related = ["member", "card"]
    show_full_result_count = False

    @admin.display(description="Balance", ordering="balance")
    def balance_shown(self, wallet):
        return f"{money.quantize(wallet.balance, wallet.card.currency)} {wallet.card.currency}"

    @admin.display(description="Pending", ordering="pending_balance")
    def pending_shown(self, wallet):
        return money.quantize(wallet.pending_balance, wallet.card.currency)

    @admin.display(description="History")
    def history(self, wallet):
        url = reverse("admin:cashback_ledgerentry_changelist") + f"?wallet__id__exact={wallet.pk}"
        return format_html('<a href="{}">entries</a>', url)

    def get_urls(self):
        adjust = self.admin_site.admin_view(self.adjust_view)
        return [
            path("<int:wallet_id>/adjust/", adjust, name="cashback_wallet_adjust"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_adjust": request.user.has_perm("cashback.adjust_wallet"),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def adjust_view(self, request, wallet_id: int):
        """Credit or debit by hand, through the same service as the API."""
        if not request.user.has_perm("cashback.adjust_wallet"):
            raise PermissionDenied
        wallet = get_object_or_404(Wallet.objects.select_related("member", "card"), pk=wallet_id)
        form = AdjustmentForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                adjustment = cashback_adjust(
                    wallet=wallet,
                    amount=form.cleaned_data["amount"],
                    reason=form.cleaned_data["reason"],
                    staff_user=request.user,
                    token=form.cleaned_data["token"],
                )
            except DomainError as exc:
                for field, errors in exc.details.items():
                    if field in form.fields:
                        form.add_error(field, errors if isinstance(errors, list) else str(errors))
                if not form.errors:
                    form.add_error(None, exc.message)
            else:
                return self._adjustment_done(request, adjustment)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Adjust wallet {wallet.pk}",
            "wallet": wallet,
            "form": form,
            "max_amount": money.quantize(adjustment_limit(), wallet.card.currency),
            "approval_threshold": money.quantize(
                settings.CASHBACK_ADJUSTMENT_APPROVAL_THRESHOLD, wallet.card.currency
            ),
            "approval_window_hours": settings.CASHBACK_ADJUSTMENT_APPROVAL_WINDOW_HOURS,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/cashback/wallet/adjust.html", context)

    def _adjustment_done(self, request, adjustment: Adjustment) -> HttpResponseRedirect:
        """Says what the submission did, and shows the wallet's history, or the request while
        it waits for approval."""
        adjusted, entry = adjustment.request, adjustment.entry
        currency = adjusted.wallet.card.currency
        amount = money.quantize(adjusted.amount, currency)
        if entry is None:
            if adjusted.status == AdjustmentStatus.PENDING:
                text = (
                    f"The adjustment of {amount} {currency} waits for approval by another "
                    f"staff user (request {adjusted.pk}); nothing is posted until then."
                )
            else:
                text = f"This adjustment was already {adjusted.get_status_display().lower()}."
            if adjustment.replayed:
                text = f"This form was already submitted. {text}"
            self.message_user(request, text, messages.WARNING)
            url = reverse("admin:cashback_adjustmentrequest_change", args=[adjusted.pk])
            return HttpResponseRedirect(url)
        if adjustment.replayed:
            self.message_user(
                request,
                f"This adjustment was already applied (entry {entry.pk}); "
                "nothing was posted again.",
                messages.WARNING,
            )
        else:
            self.message_user(
                request,
                f"Adjusted wallet {adjusted.wallet_id} by {amount}; the balance is now "
                f"{money.quantize(entry.balance_after, currency)} {currency} (entry {entry.pk}).",
                messages.SUCCESS,
            )
        url = reverse("admin:cashback_ledgerentry_changelist")
        return HttpResponseRedirect(f"{url}?wallet__id__exact={adjusted.wallet_id}")


@admin.register(AdjustmentRequest)
class AdjustmentRequestAdmin(ReadOnlyAdmin):
    """Adjustments as submitted; those past the approval threshold (over its window) wait here
    for a second staff user. Read-only: only the approve and reject buttons change a request."""

    list_display = [
        "id",
        "created_at",
        "status",
        "amount_shown",
        "wallet",
        "requested_by",
        "decided_by",
        "decided_at",
        "entry",
    ]
    list_filter = ["status"]
    list_select_related = ["wallet", "wallet__card", "requested_by", "decided_by", "entry"]
    change_form_template = "admin/cashback/adjustmentrequest/change_form.html"

    @admin.display(description="Amount", ordering="amount")
    def amount_shown(self, adjusted):
        currency = adjusted.wallet.card.currency
        return f"{money.quantize(adjusted.amount, currency)} {currency}"

    def get_urls(self):
        def decide(service):
            def view(request, request_id: int):
                return self.decide_view(request, request_id, service)

            return self.admin_site.admin_view(view)

        return [
            path(
                "<int:request_id>/approve/",
                decide(self._approve),
                name="cashback_adjustmentrequest_approve",
            ),
            path(
                "<int:request_id>/reject/",
                decide(self._reject),
                name="cashback_adjustmentrequest_reject",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        adjusted = self.get_object(request, object_id)
        can_reject = can_approve = False
        if adjusted is not None and adjusted.status == AdjustmentStatus.PENDING:
            can_reject = request.user.has_perm("cashback.adjust_wallet")
            can_approve = can_reject and adjusted.requested_by_id != request.user.pk
        extra_context = {
            **(extra_context or {}),
            "can_reject": can_reject,
            "can_approve": can_approve,
        }
        return super().change_view(request, object_id, form_url, extra_context)

    @staticmethod
    def _approve(request, adjusted: AdjustmentRequest) -> str:
        approved = adjustment_request_approve(adjustment_request=adjusted, approver=request.user)
        entry = cast(LedgerEntry, approved.entry)  # an approved request has posted its entry
        currency = adjusted.wallet.card.currency
        return (
            f"Approved: entry {entry.pk} moves wallet {adjusted.wallet_id} by "
            f"{money.quantize(entry.amount, currency)}; the balance is now "
            f"{money.quantize(entry.balance_after, currency)} {currency}."
        )

    @staticmethod
    def _reject(request, adjusted: AdjustmentRequest) -> str:
        adjustment_request_reject(adjustment_request=adjusted, staff_user=request.user)
        return f"Rejected request {adjusted.pk}; nothing was posted."

    def decide_view(self, request, request_id: int, service):
        """Approves or rejects a pending request (POST), then shows it again."""
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not request.user.has_perm("cashback.adjust_wallet"):
            raise PermissionDenied
        adjusted = get_object_or_404(
            AdjustmentRequest.objects.select_related("wallet__card"), pk=request_id
        )
        try:
            text = service(request, adjusted)
        except DomainError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.message_user(request, text, messages.SUCCESS)
        url = reverse("admin:cashback_adjustmentrequest_change", args=[adjusted.pk])
        return HttpResponseRedirect(url)


class EstimatedCountPaginator(Paginator):
    """An unfiltered ledger list takes the planner's row estimate instead of counting a
    million rows on every page."""

    @cached_property
    def count(self):
        entries = cast(QuerySet[LedgerEntry], self.object_list)
        if not entries.query.where:
            with connections[entries.db].cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = %s",
                    [LedgerEntry._meta.db_table],
                )
                estimate = cursor.fetchone()[0]
            if estimate > 100_000:
                return estimate
        return super().count


EXPORT_COLUMNS = [
    ("id", "transaction_id"),
    ("created_at", "created_at"),
    ("app__app_id", "app_id"),
    ("card_id", "card_id"),
    ("card__currency", "currency"),
    ("wallet__member_id", "member_id"),
    ("wallet__member__email", "member_email"),
    ("entry_type", "type"),
    ("event", "event"),
    ("amount", "amount"),
    ("balance_after", "balance_after"),
    ("purchase_amount", "purchase_amount"),
    ("refund_amount", "refund_amount"),
    ("reference", "reference"),
    ("created_by__username", "staff_user"),
    ("wallet__member__name", "member_name"),
    ("wallet__member__phone", "member_phone"),
    ("card__name", "card_name"),
    ("metadata", "metadata"),
    ("approved_by__username", "approved_by"),
    ("pending_amount", "pending_amount"),
    ("pending_balance_after", "pending_balance_after"),
    ("original_entry_id", "original_transaction_id"),
]
# Written in the card's currency, as numbers.
EXPORT_MONEY = {
    "amount",
    "balance_after",
    "purchase_amount",
    "refund_amount",
    "pending_amount",
    "pending_balance_after",
}
_EXPORT_CURRENCY = [header for _, header in EXPORT_COLUMNS].index("currency")


def export_row(row: tuple) -> list:
    """One entry as CSV cells: amounts in the currency's minor unit, metadata as JSON, and no
    text that a spreadsheet would run as a formula."""
    currency = row[_EXPORT_CURRENCY]
    cells = []
    for (_, header), value in zip(EXPORT_COLUMNS, row, strict=True):
        if header in EXPORT_MONEY and value is not None:
            value = money.quantize(value, currency)
        elif header == "metadata":
            value = json.dumps(value, ensure_ascii=False, sort_keys=True)
        cells.append(spreadsheet_cell(value))
    return cells


class _Echo:
    def write(self, value):
        return value


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    """Strictly read-only: the ledger is append-only, and only services append to it."""

    list_display = [
        "id",
        "created_at",
        "entry_type",
        "amount_shown",
        "balance_after_shown",
        "pending_amount_shown",
        "original_entry_id",
        "wallet",
        "card",
        "reference",
        "created_by",
        "approved_by",
    ]
    list_filter = ["entry_type", "card", "app", "created_at"]
    search_fields = ["=reference", "=wallet__member__email"]
    search_help_text = "An exact reference, or a member's email."
    list_select_related = ["wallet", "wallet__member", "card", "created_by", "approved_by"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    change_list_template = "admin/cashback/ledgerentry/change_list.html"

    @admin.display(description="Amount", ordering="amount")
    def amount_shown(self, entry):
        return money.quantize(entry.amount, entry.card.currency)

    @admin.display(description="Balance after", ordering="balance_after")
    def balance_after_shown(self, entry):
        return money.quantize(entry.balance_after, entry.card.currency)

    @admin.display(description="Pending moved", ordering="pending_amount")
    def pending_amount_shown(self, entry):
        return money.quantize(entry.pending_amount, entry.card.currency)

    def get_search_results(self, request, queryset, search_term):
        # Emails are stored lower-cased: an exact, indexed match instead of UPPER() = UPPER().
        term = search_term.strip()
        if not term:
            return queryset, False
        if "@" in term:
            return queryset.filter(wallet__member__email=term.lower()), False
        return queryset.filter(reference=term), False

    def get_urls(self):
        return [
            path(
                "export/",
                self.admin_site.admin_view(self.export_view),
                name="cashback_ledgerentry_export",
            ),
            path(
                "dashboard/",
                self.admin_site.admin_view(self.dashboard_view),
                name="cashback_dashboard",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_export": request.user.has_perm("cashback.export_ledger"),
            "can_view_dashboard": request.user.has_perm("cashback.view_dashboard"),
        }
        return super().changelist_view(request, extra_context)

    def export_view(self, request):
        """The ledger list as filtered on screen, streamed as CSV row by row."""
        if not request.user.has_perm("cashback.export_ledger"):
            raise PermissionDenied
        entries = self.get_changelist_instance(request).get_queryset(request)
        rows = entries.values_list(*(field for field, _ in EXPORT_COLUMNS)).order_by(
            "-created_at", "-id"
        )
        writer = csv.writer(_Echo())

        def lines():
            yield writer.writerow([header for _, header in EXPORT_COLUMNS])
            for row in rows.iterator(chunk_size=2000):
                yield writer.writerow(export_row(row))

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="ledger.csv"'
        return response

    def dashboard_view(self, request):
        """Where the dashboard was before it became the home page: bookmarks still find it."""
        return HttpResponseRedirect(reverse("admin:index"))


@admin.register(Lot)
class LotAdmin(ReadOnlyAdmin):
    """Each credit and what is left of it: held, spendable, when it expires."""

    list_display = [
        "id",
        "source",
        "wallet",
        "pending",
        "remaining",
        "available_at",
        "expires_at",
        "warned_at",
    ]
    list_filter = ["wallet__card"]
    search_fields = ["=wallet__member__email", "=source__id"]
    list_select_related = ["source", "wallet", "wallet__member", "wallet__card"]
    show_full_result_count = False
