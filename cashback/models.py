from decimal import Decimal
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connections, models, router
from django.db.models import F, Q
from django.utils import timezone

from core.rows import from_row, quote, select_list


class WalletManager(models.Manager["Wallet"]):
    def move(
        self, *, app_id: int, card_id: int, member_id: int, amount: Decimal
    ) -> "Wallet | None":
        """Adds `amount` (signed) to the member's wallet on the card and counts one more entry,
        and returns the wallet as it is after the move; None when the member has no wallet on
        the card.

        One `UPDATE ... RETURNING` (`_move_sql`), which locks the row until the transaction
        ends: the ORM's `update()` returns no row, and reading the balance back would cost a
        second round trip on every operation. The check constraint refuses a balance below zero.
        """
        using = self._db or router.db_for_write(self.model)
        params: dict[str, Any] = {
            "amount": amount,
            "now": timezone.now(),
            "app": app_id,
            "card": card_id,
            "member": member_id,
        }
        with connections[using].cursor() as cursor:
            cursor.execute(_move_sql(), params)
            row = cursor.fetchone()
        return None if row is None else from_row(self.model, row, using)


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


class LedgerEntryManager(models.Manager["LedgerEntry"]):
    def append(self, **fields: Any) -> "LedgerEntry":
        """Saves a new entry in one `INSERT ... RETURNING` (`_append_sql`) and returns it.

        The row holds what `create()` would write: each field's default, `auto_now_add`, each
        value as its field prepares it for the database. What `save()` does besides (signals,
        parent models, state checks) is left out: it costs an earn more CPU than its own SQL
        (see the README's benchmark). The ledger is append-only; entries are never saved again.
        """
        entry = self.model(**fields)
        using = self._db or router.db_for_write(self.model)
        connection = connections[using]
        sql, columns = _append_sql()
        params = [
            field.get_db_prep_save(field.pre_save(entry, True), connection) for field in columns
        ]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            (entry.pk,) = cursor.fetchone()
        entry._state.adding = False
        entry._state.db = using
        return entry

    def history_page(self, *, wallet_id: int, limit: int, offset: int) -> list["LedgerEntry"]:
        """One page of a wallet's entries, newest first.

        The page's ids come from the (wallet, created_at, id) index alone, an index-only scan
        however deep the offset, and only the page's rows are read (`_history_page_sql`).
        Written out, on the connection the router picks for reads, because composing it with
        the ORM costs a worker more CPU than the rest of a history request (see the README).
        """
        using = self._db or router.db_for_read(self.model)
        with connections[using].cursor() as cursor:
            cursor.execute(
                _history_page_sql(), {"wallet": wallet_id, "limit": limit, "offset": offset}
            )
            rows = cursor.fetchall()
        return [from_row(self.model, row, using) for row in rows]


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
    # The second staff user who approved an adjustment above the approval threshold.
    approved_by = models.ForeignKey(
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

    objects = LedgerEntryManager()

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


class AdjustmentStatus(models.TextChoices):
    PENDING = "pending", "Waiting for approval"
    APPLIED = "applied", "Applied"  # at once: not above the approval threshold
    APPROVED = "approved", "Approved and applied"
    REJECTED = "rejected", "Rejected"


class AdjustmentRequest(models.Model):
    """A staff adjustment as submitted from the back office.

    The form's one-time `token` is unique: a second submission of the same form finds this
    request instead of posting again. Above the approval threshold the request waits, posting
    nothing, until another staff user approves it; its `entry` is the ledger entry it posted.
    """

    wallet = models.ForeignKey(Wallet, on_delete=models.PROTECT, related_name="adjustment_requests")
    amount = models.DecimalField(max_digits=20, decimal_places=4)
    reason = models.CharField(max_length=500)
    token = models.UUIDField(unique=True)
    status = models.CharField(
        max_length=8, choices=AdjustmentStatus.choices, default=AdjustmentStatus.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    # Who approved or rejected it; nobody for one applied at once.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    entry = models.OneToOneField(
        LedgerEntry,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="adjustment_request",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(amount=0), name="adjustment_request_amount_nonzero"
            ),
            # Posted if and only if applied or approved.
            models.CheckConstraint(
                condition=(
                    Q(status__in=["applied", "approved"], entry__isnull=False)
                    | Q(status__in=["pending", "rejected"], entry__isnull=True)
                ),
                name="adjustment_request_entry_iff_posted",
            ),
            # Four eyes: nobody approves their own request.
            models.CheckConstraint(
                condition=~Q(status="approved")
                | (Q(decided_by__isnull=False) & ~Q(decided_by=F("requested_by"))),
                name="adjustment_request_approved_by_another",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"], name="adjustment_request_status"),
        ]

    def __str__(self) -> str:
        return f"Adjustment request {self.pk}: {self.amount} ({self.status})"


@cache
def _move_sql() -> str:
    meta = Wallet._meta
    column = {field.name: quote(field.column) for field in meta.concrete_fields}
    balance, count = column["balance"], column["entries_count"]
    return (
        f"UPDATE {quote(meta.db_table)} w SET "  # noqa: S608  names from _meta, values bound
        f"{balance} = {balance} + %(amount)s, {count} = {count} + 1, "
        f"{column['updated_at']} = %(now)s "
        f"WHERE w.{column['app']} = %(app)s AND w.{column['card']} = %(card)s "
        f"AND w.{column['member']} = %(member)s "
        f"RETURNING {select_list(Wallet, 'w')}"
    )


@cache
def _append_sql() -> tuple[str, list[models.Field]]:
    """The INSERT, and the fields whose prepared values it takes, in its column order."""
    meta = LedgerEntry._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    columns = ", ".join(quote(field.column) for field in fields)
    marks = ", ".join(["%s"] * len(fields))
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks}) RETURNING {pk}"  # noqa: S608
    return sql, fields


@cache
def _history_page_sql() -> str:
    meta = LedgerEntry._meta
    table, pk, wallet = (
        quote(meta.db_table),
        quote(meta.pk.column),
        quote(meta.get_field("wallet").column),
    )
    newest_first = f"{quote(meta.get_field('created_at').column)} DESC, {pk} DESC"
    return (
        f"SELECT {select_list(LedgerEntry, 'e')} FROM {table} e "  # noqa: S608  names from _meta
        f"WHERE e.{pk} IN (SELECT {pk} FROM {table} WHERE {wallet} = %(wallet)s "
        f"ORDER BY {newest_first} LIMIT %(limit)s OFFSET %(offset)s) "
        f"ORDER BY {newest_first}"
    )
