"""The programme in the back office: earning rules (campaigns), tiers and members' tiers.

Here rather than in `programme/admin.py` because the preview of what a basket would earn is the
ledger's quote (`programme` may not import `cashback`); imported by `cashback.admin`."""

from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest

from cashback.serializers import QuoteResultSerializer, QuoteSerializer
from cashback.services.quote import cashback_quote
from core import money
from core.admin import ReadOnlyAdmin
from core.errors import DomainError, InvalidInput
from programme.models import EarningRule, MemberTier, Period, RuleUse, Tier
from programme.services import rule_check, rule_uses, tier_rename

# Counted by earns and refunds, under the rule's row lock: never written from a form.
RULE_COUNTERS = {"budget_spent"}


class PreviewForm(forms.Form):
    member = forms.CharField(
        required=False,
        max_length=254,
        help_text="A member's id, email or phone; empty: a new member.",
    )
    lines = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 50}),
        help_text="One basket line per row: SKU, category, amount (the category may be empty).",
    )
    purchase_amount = forms.CharField(
        required=False, max_length=32, help_text="Without lines: the purchase amount."
    )


def _preview_body(data: dict) -> dict:
    """The form as an earn's body, for the API's own validation (`QuoteSerializer`)."""
    body: dict = {}
    who = data["member"].strip()
    if not who:
        body["email"] = "new.member@example.invalid"
    elif who.isdigit():
        body["member_id"] = who
    else:
        body["email" if "@" in who else "phone"] = who
    rows = [row.strip() for row in data["lines"].splitlines() if row.strip()]
    lines = []
    for row in rows:
        sku, category, amount = ([*(part.strip() for part in row.split(",")), "", ""])[:3]
        if not amount:  # "SKU, amount"
            category, amount = "", category
        lines.append({"sku": sku, "category": category or None, "amount": amount})
    if lines:
        body["lines"] = lines
        body["purchase_amount"] = data["purchase_amount"].strip() or str(
            sum((Decimal(line["amount"]) for line in lines if _number(line["amount"])), Decimal(0))
        )
    else:
        body["purchase_amount"] = data["purchase_amount"].strip()
    return body


def _number(text: str) -> bool:
    try:
        return Decimal(text).is_finite()
    except InvalidOperation:
        return False


class PreviewMixin:
    """The preview on a rule's or a tier's page: what a basket would earn on its card for a
    member now, with its breakdown, as the API's quote answers it (`cashback_quote`, which
    writes nothing: no member created, no use counted, no budget taken)."""

    def preview_context(self, request: HttpRequest, obj) -> dict | None:
        card = obj.card
        asked = "preview-lines" in request.GET or "preview-purchase_amount" in request.GET
        form = PreviewForm(request.GET if asked else None, prefix="preview")
        context: dict = {"form": form, "currency": card.currency, "quote": None, "errors": None}
        if not asked or not form.is_valid():
            return context
        params = QuoteSerializer(data={"card_id": card.pk, **_preview_body(form.cleaned_data)})
        if not params.is_valid():
            context["errors"] = params.errors
            return context
        try:
            quote = cashback_quote(
                app=card.app,
                card=card,
                member_ref=params.member_ref(),
                purchase_amount=params.validated_data["purchase_amount"],
                lines=params.basket(),
            )
        except DomainError as exc:
            context["errors"] = {exc.code: [exc.message]}
            return context
        context["quote"] = QuoteResultSerializer(quote, context={"card": card}).data
        return context

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id) if object_id else None  # type: ignore[attr-defined]
        extra_context = {
            **(extra_context or {}),
            "preview": None if obj is None else self.preview_context(request, obj),
        }
        return super().change_view(request, object_id, form_url, extra_context)  # type: ignore[misc]


class EarningRuleForm(forms.ModelForm):
    class Meta:
        model = EarningRule
        # All but the app (the card's) and the counters.
        fields = [
            "card",
            "name",
            "kind",
            "factor",
            "percentage",
            "amount",
            "priority",
            "stackable",
            "active",
            "starts_at",
            "ends_at",
            "days_of_week",
            "hours_from",
            "hours_to",
            "categories",
            "skus",
            "min_purchase",
            "tiers",
            "first_purchase_only",
            "max_per_transaction",
            "max_uses_per_member",
            "per",
            "budget",
        ]

    def clean(self):
        """The rule as the API checks it (`programme.services.rule_check`: one home for what a
        rule may be), the budget against what it gave under its row's lock."""
        cleaned = super().clean() or {}
        card = cleaned.get("card") or (self.instance.card if self.instance.card_id else None)
        if card is None or self.errors:
            return cleaned
        if self.instance.pk is not None:
            # Held until the admin's transaction ends, as an earn holds it to spend from it.
            self.instance.budget_spent = (
                EarningRule.objects.select_for_update()
                .values_list("budget_spent", flat=True)
                .get(pk=self.instance.pk)
            )
        rule = self.instance
        for name, value in cleaned.items():
            setattr(rule, name, value)
        if (rule.hours_from is None) != (rule.hours_to is None):
            self.add_error("hours_to", "Give both hours, or neither.")
        try:
            rule_check(rule, card)
        except InvalidInput as exc:
            for field, messages_ in exc.details.items():
                self.add_error(field if field in self.fields else None, " ".join(messages_))
        return cleaned


@admin.register(EarningRule)
class EarningRuleAdmin(PreviewMixin, admin.ModelAdmin):
    """A card's rules. A rule that ever applied is kept for the breakdowns that name it:
    deactivated, never deleted."""

    form = EarningRuleForm
    change_form_template = "admin/programme/earningrule/change_form.html"
    list_display = [
        "name",
        "card",
        "kind",
        "priority",
        "active",
        "budget_used",
        "budget_remaining_shown",
        "uses",
    ]
    list_filter = ["active", "kind", "stackable", "card__app", "card"]
    search_fields = ["name"]
    list_select_related = ["card"]
    ordering = ["card", "priority", "id"]
    readonly_fields = ["budget_spent", "uses", "created_at", "updated_at"]

    def get_queryset(self, request):
        # How many earns each rule applied to: the sum of its members' uses `ever`.
        ever = Q(member_uses__per=Period.EVER)
        return (
            super()
            .get_queryset(request)
            .annotate(uses_count=Coalesce(Sum("member_uses__uses", filter=ever), 0))
        )

    @admin.display(description="Uses", ordering="uses_count")
    def uses(self, rule: EarningRule) -> int:
        return getattr(rule, "uses_count", None) or rule_uses([rule]).get(rule.pk, 0)

    actions = ["deactivate"]
    fieldsets = [
        (None, {"fields": ["card", "name", "kind", "factor", "percentage", "amount"]}),
        ("Order", {"fields": ["priority", "stackable", "active"]}),
        (
            "Conditions",
            {
                "fields": [
                    "starts_at",
                    "ends_at",
                    "days_of_week",
                    ("hours_from", "hours_to"),
                    "categories",
                    "skus",
                    "min_purchase",
                    "tiers",
                    "first_purchase_only",
                ]
            },
        ),
        (
            "Limits",
            {
                "fields": [
                    "max_per_transaction",
                    ("max_uses_per_member", "per"),
                    "budget",
                    "budget_spent",
                    "uses",
                ]
            },
        ),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    @admin.display(description="Budget used")
    def budget_used(self, rule: EarningRule) -> str:
        if rule.budget is None:
            return "—"
        currency = rule.card.currency
        return (
            f"{money.quantize(rule.budget_spent, currency)} of "
            f"{money.quantize(rule.budget, currency)} {currency}"
        )

    @admin.display(description="Budget remaining")
    def budget_remaining_shown(self, rule: EarningRule) -> str:
        remaining = rule.budget_remaining
        return "—" if remaining is None else str(money.quantize(remaining, rule.card.currency))

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("card")  # a rule belongs to its card
        return fields

    def save_model(self, request, obj, form, change):
        obj.app_id = obj.card.app_id
        if change:
            # Never the counters: an earn may have moved them since the form was read.
            fields = [
                f.name
                for f in obj._meta.concrete_fields
                if not f.primary_key and f.name not in RULE_COUNTERS | {"created_at"}
            ]
            obj.save(update_fields=fields)
        else:
            obj.save()

    def has_delete_permission(self, request, obj=None):
        if obj is not None and RuleUse.objects.filter(rule=obj).exists():
            return False
        return super().has_delete_permission(request, obj)

    def delete_queryset(self, request, queryset: QuerySet[EarningRule]) -> None:
        used = queryset.filter(member_uses__isnull=False).distinct()
        if used.exists():
            self.message_user(
                request,
                "Rules that applied to an earn are kept; deactivate them instead.",
                messages.ERROR,
            )
        queryset.exclude(pk__in=used.values("pk")).delete()

    @admin.action(description="Deactivate selected rules", permissions=["change"])
    def deactivate(self, request, queryset: QuerySet[EarningRule]) -> None:
        count = queryset.filter(active=True).update(active=False)
        self.message_user(request, f"Deactivated {count} rule(s).", messages.SUCCESS)


class TierForm(forms.ModelForm):
    class Meta:
        model = Tier
        fields = ["card", "name", "threshold", "cashback_percentage"]

    def clean(self):
        cleaned = super().clean() or {}
        card = cleaned.get("card") or (self.instance.card if self.instance.card_id else None)
        if card is None:
            return cleaned
        # The uniqueness constraints include the app, which is the card's and not on the form.
        others = Tier.objects.filter(app_id=card.app_id, card=card).exclude(pk=self.instance.pk)
        for field in ("threshold", "name"):
            value = cleaned.get(field)
            if value is not None and others.filter(**{field: value}).exists():
                self.add_error(field, f"The card has a tier with this {field}.")
        threshold = cleaned.get("threshold")
        if threshold is not None and not money.has_valid_places(threshold, card.currency):
            digits = money.minor_digits(card.currency)
            self.add_error("threshold", f"At most {digits} decimal places for {card.currency}.")
        return cleaned


@admin.register(Tier)
class TierAdmin(PreviewMixin, admin.ModelAdmin):
    """A card's tiers, lowest threshold first. A tier members are in cannot be deleted."""

    form = TierForm
    change_form_template = "admin/programme/tier/change_form.html"
    list_display = ["name", "card", "threshold", "cashback_percentage", "created_at"]
    list_filter = ["card__app", "card"]
    search_fields = ["name"]
    list_select_related = ["card"]
    ordering = ["card", "threshold", "id"]
    readonly_fields = ["created_at"]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None:
            fields.append("card")
        return fields

    def save_model(self, request, obj, form, change):
        obj.app_id = obj.card.app_id
        with transaction.atomic():
            if change and "name" in form.changed_data:
                tier_rename(tier=obj, old=form.initial["name"])
            super().save_model(request, obj, form, change)


@admin.register(MemberTier)
class MemberTierAdmin(ReadOnlyAdmin):
    """Members' tiers as the earns and the worker set them: read-only here."""

    list_display = [
        "member",
        "card",
        "tier",
        "reached_at",
        "retained_until",
        "reason",
        "updated_at",
    ]
    list_filter = ["reason", "card", "tier"]
    search_fields = ["=member__email", "=member__phone"]
    list_select_related = ["member", "card", "tier"]
    show_full_result_count = False
