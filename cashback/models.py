from decimal import Decimal
from typing import cast

from django.conf import settings
from django.db import connections, models, router
from django.db.models import Q
from django.utils import timezone


class WalletManager(models.Manager["Wallet"]):
    def move(
        self, *, app_id: int, card_id: int, member_id: int, amount: Decimal
    ) -> "Wallet | None":
        """Adds `amount` (signed) to the member's wallet on the card and counts one more entry,
        and returns the wallet as it is after the move; None when the member has no wallet on
        the card.

        One `UPDATE ... RETURNING`, which locks the row until the transaction ends: the ORM's
        `update()` returns no row, and reading the balance back would cost a second round trip
        on every operation. The check constraint refuses a balance below zero.
        """
        meta = self.model._meta
        using = router.db_for_write(self.model)
        connection = connections[using]
        quote = connection.ops.quote_name
        fields = meta.concrete_fields
        column = {f.name: quote(cast(str, f.column)) for f in fields}
        sql = (
            f"UPDATE {quote(meta.db_table)} SET "  # noqa: S608  names from _meta, values bound
            f"{column['balance']} = {column['balance']} + %s, "
            f"{column['entries_count']} = {column['entries_count']} + 1, "
            f"{column['updated_at']} = %s "
            f"WHERE {column['card']} = %s AND {column['member']} = %s AND {column['app']} = %s "
            f"RETURNING {', '.join(column[f.name] for f in fields)}"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [amount, timezone.now(), card_id, member_id, app_id])
            row = cursor.fetchone()
        # PostgreSQL hands these columns back as the fields hold them (no converters apply).
        return None if row is None else self.model.from_db(using, [f.attname for f in fields], row)


class Wallet(models.Model):
    """A member's balance on one card. Changed only by a service, with a ledger entry each time."""

    app = models.ForeignKey("apps_auth.App", on_delete=models.PROTECT, related_name="wallets")
    member = models.ForeignKey("members.Member", on_delete=models.PROTECT, related_name="wallets")
    card = models.ForeignKey("cards.Card", on_delete=models.PROTECT, related_name="wallets")
    balance = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal(0))
    # How many entries the wallet has: history's total without counting a million rows.
    entries_count = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WalletManager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["member", "card"], name="wallet_member_card"),
            models.CheckConstraint(condition=Q(balance__gte=0), name="wallet_balance_gte_0"),
        ]

    def __str__(self) -> str:
        return f"Wallet {self.pk}: member {self.member_id}, card {self.card_id}"


class EntryType(models.TextChoices):
    EARNING = "earning", "Earning"
    REDEMPTION = "redemption", "Redemption"
    REFUND = "refund", "Refund"
    ADJUSTMENT = "adjustment", "Adjustment"


EVENTS = {
    EntryType.EARNING: "cashback_earned",
    EntryType.REDEMPTION: "cashback_redeemed",
    EntryType.REFUND: "cashback_refunded",
    EntryType.ADJUSTMENT: "cashback_adjusted",
}


class LedgerEntry(models.Model):
    """One balance change, append-only. Its id is the API's `transaction_id`.

    `amount` is signed (redemptions and refunds negative) and `balance_after` is the wallet's
    balance right after it, so the entries of a wallet replay its balance.
    """

    # Each foreign key is the first column of one of the indexes below, which serve it.
    app = models.ForeignKey(
        "apps_auth.App", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    wallet = models.ForeignKey(
        Wallet, on_delete=models.PROTECT, related_name="entries", db_index=False
    )
    card = models.ForeignKey(
        "cards.Card", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    entry_type = models.CharField(max_length=12, choices=EntryType.choices)
    event = models.CharField(max_length=24)
    amount = models.DecimalField(max_digits=20, decimal_places=4)
    balance_after = models.DecimalField(max_digits=20, decimal_places=4)
    purchase_amount = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    refund_amount = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    cashback_percentage = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    # What a refund set out to take back but could not, the balance being too low.
    unrecovered_amount = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal(0))
    original_entry = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="refunds"
    )
    reference = models.CharField(max_length=255, null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # A digest of the request that made the entry, to tell a replay from a reused reference.
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    # The staff user who made an adjustment; reason and other context stay in `metadata`.
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    # The Idempotency-Key that made it: at most one entry per key, whatever crashes in between.
    idempotency_record = models.OneToOneField(
        "apps_auth.IdempotencyRecord",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="entry",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(
                fields=["card", "entry_type", "reference"],
                condition=Q(reference__isnull=False),
                name="entry_reference_per_card_and_type",
            ),
            # A refund on an empty wallet is recorded with 0 so that it still counts against its
            # earning; every other entry moves money.
            models.CheckConstraint(
                condition=~Q(amount=0) | Q(entry_type="refund"), name="entry_amount_nonzero"
            ),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="entry_balance_gte_0"),
        ]
        indexes = [
            models.Index(fields=["wallet", "-created_at", "-id"], name="entry_wallet_history"),
            # The back office lists, filters and exports by these, newest first.
            models.Index(fields=["-created_at", "-id"], name="entry_newest"),
            models.Index(fields=["card", "-created_at"], name="entry_card_newest"),
            models.Index(fields=["app", "-created_at"], name="entry_app_newest"),
            models.Index(fields=["entry_type", "-created_at"], name="entry_type_newest"),
            models.Index(fields=["reference"], name="entry_reference"),
        ]
        permissions = [
            ("adjust_wallet", "Can credit or debit a wallet by hand"),
            ("export_ledger", "Can export the ledger as CSV"),
            ("view_dashboard", "Can view the cashback dashboard"),
        ]

    def __str__(self) -> str:
        return f"{self.entry_type} {self.amount} (#{self.pk})"

    @property
    def previous_balance(self) -> Decimal:
        return self.balance_after - self.amount
