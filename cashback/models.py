from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models, router
from django.db.models import F, Q
from django.utils import timezone

from cashback.queries import (
    ENTRY_APPEND,
    ENTRY_APPEND_FOR_PROGRAMME,
    ENTRY_APPEND_SPENDING,
    HISTORY_ENDS,
    HISTORY_ENDS_OF_TYPE,
    HISTORY_RANGE,
    HISTORY_RANGE_OF_TYPE,
    LOCK_FOR_PROGRAMME,
    LOT_SPEND,
    MEMBER_WALLET_INSERT,
    PROGRAMME_FACTS,
    WALLET_INSERT,
    WALLET_MOVE,
)
from core.rows import (
    array_text,
    from_row,
    from_rows,
    inserted,
    mark_saved,
    prepared_cursor,
    prepared_values,
)
from members.models import Member, member_keys
from webhooks.models import EventDraft


class WalletManager(models.Manager["Wallet"]):
    def insert_new(self, **fields: Any) -> "Wallet | None":
        """Saves a new wallet with these fields and returns it as `move` returns a wallet: with
        the id its first entry takes (`next_entry_id`), locked (as a new row is) until the
        transaction ends. None when the member has one on the card already, and nothing is
        written (`cashback.queries.WALLET_INSERT`).

        A wallet made for its first entry is saved as that entry leaves it (`balance`,
        `pending_balance`, `entries_count` 1), and not moved after: a statement less."""
        using = self._db or router.db_for_write(self.model)
        wallet = self.model(**fields)
        row = inserted(WALLET_INSERT, prepared_values(wallet, using), using)
        if row is None:
            return None
        key, wallet.next_entry_id = row
        mark_saved(wallet, key, using)
        return wallet

    def insert_new_with_member(self, member: Member, **fields: Any) -> "Wallet | None":
        """Saves the new `member` and its new wallet with these fields in one statement, and
        returns the wallet as `insert_new` does (its `member` the saved member); None when the
        member's email or phone is its app's already, and nothing is written
        (`cashback.queries.MEMBER_WALLET_INSERT`)."""
        using = self._db or router.db_for_write(self.model)
        wallet = self.model(**fields)
        params = prepared_values(member, using, prefix="member_") | prepared_values(wallet, using)
        row = inserted(MEMBER_WALLET_INSERT, params, using)
        if row is None:
            return None
        member_key, key, wallet.next_entry_id = row
        mark_saved(member, member_key, using)
        wallet.member = member
        mark_saved(wallet, key, using)
        return wallet

    def programme_facts(
        self,
        *,
        app_id: int,
        card_id: int,
        member_id: int,
        budgeted: list[int],
        lock: bool = False,
        using: str | None = None,
    ) -> "Wallet | None":
        """The member's wallet on the card with what an earn on a card with a programme needs
        to know first (`PROGRAMME_FACTS`): `next_available_at`, `next_expiry_at` (for
        `cashback.services.ledger.wallet_due`), `has_earned`, `member_tier_id`, `rule_uses`
        (of the card's rules that limit uses), `budgets_left` (of the rules `budgeted`, by
        id) and `fresh`; None when the member has no wallet on the card.
        `lock`: the wallet is locked until the transaction ends and read with its balances,
        `next_entry_id` and `last_entry_at`, as `move` leaves it (`LOCK_FOR_PROGRAMME`); the
        facts are as they were before the lock unless `fresh`."""
        using = using or self._db or router.db_for_read(self.model)
        params: dict[str, Any] = {
            "app": app_id,
            "card": card_id,
            "member": member_id,
            "budgeted": array_text(budgeted),
        }
        with prepared_cursor(using) as cursor:
            cursor.execute(LOCK_FOR_PROGRAMME if lock else PROGRAMME_FACTS, params)
            row = cursor.fetchone()
        if row is None:
            return None
        pk, inactive_at, available_at, expiry_at, earned, tier_id, uses, budgets, fresh, *more = row
        wallet = self.model(
            id=pk, app_id=app_id, card_id=card_id, member_id=member_id, inactive_at=inactive_at
        )
        wallet._state.adding, wallet._state.db = False, using
        wallet.lots_read, wallet.next_available_at, wallet.next_expiry_at = (
            True,
            available_at,
            expiry_at,
        )
        wallet.has_earned, wallet.member_tier_id, wallet.rule_uses = earned, tier_id, uses
        wallet.budgets_left = {int(rule): Decimal(left) for rule, left in (budgets or {}).items()}
        wallet.fresh = fresh
        if lock:
            wallet.balance, wallet.pending_balance, wallet.next_entry_id, wallet.last_entry_at = (
                more
            )
        return wallet

    def move(
        self,
        *,
        app_id: int,
        card_id: int,
        member_id: int | None = None,
        email: str | None = None,
        phone: str | None = None,
        amount: Decimal,
        pending_amount: Decimal = Decimal(0),
        covered: bool = False,
        unlocked: bool = False,
        settled: bool = False,
        earning: bool = False,
        inactive_at: datetime | None = None,
        at: datetime | None = None,
    ) -> "Wallet | None":
        """Adds `amount` (signed) to the spendable balance on the card of the app's member with
        this id, else this email, else this phone, and `pending_amount` (signed) to its pending
        balance, counts one more entry, and returns the wallet as it is after the move; None
        when there is no such member or it has no wallet on the card, and, `covered`, when the
        spendable balance does not cover a debit (it would go below zero), and, `unlocked`, when
        the member's PIN is locked (`members.errors.PinLocked`), and, `settled`, when a lot of
        the wallet is due for release or past its expiry (the caller then locks the wallet and
        settles it first: `cashback.services.ledger.wallet_settle`), which includes a wallet
        past its `inactive_at`. `earning`: the move is an earning's, which sets the wallet's
        `inactive_at` to `inactive_at` (None: the card has no inactivity expiry). `at`: the
        time the move is for (its checks of lots due, of the PIN's lock; None: now). The wallet
        also carries the id its next entry takes (`next_entry_id`, drawn from the entries'
        sequence) and the time of its last entry (`last_entry_at`, None: none), read under its
        lock, so that the caller knows its entry whole before it saves it
        (`LedgerEntry.objects.append`).

        One `UPDATE ... RETURNING` (`cashback.queries.WALLET_MOVE`), which locks the row until
        the transaction ends and, by email or phone, finds the member in the same statement:
        the ORM's `update()` returns no row, and reading the balance back (or the member first)
        would cost a round trip more on every operation. The check constraint refuses a balance
        below zero.
        """
        keys = member_keys(member_id=member_id, email=email, phone=phone)
        if keys is None:
            raise ValueError("A member id, email or phone is needed.")
        using = self._db or router.db_for_write(self.model)
        params: dict[str, Any] = {
            "amount": amount,
            "pending": pending_amount,
            "now": at or timezone.now(),
            "app": app_id,
            "card": card_id,
            **keys,
            "covered": covered,
            "unlocked": unlocked,
            "settled": settled,
            "earning": earning,
            "inactive_at": inactive_at,
        }
        with prepared_cursor(using) as cursor:
            cursor.execute(WALLET_MOVE, params)
            row = cursor.fetchone()
        if row is None:
            return None
        *columns, next_entry_id, last_entry_at = row
        wallet = from_row(self.model, columns, using)
        wallet.next_entry_id, wallet.last_entry_at = next_entry_id, last_entry_at
        return wallet


class Wallet(models.Model):
    """A member's balance on one card. Changed only by a service, with a ledger entry each time.

    `balance` is what the member can spend; `pending_balance` what was earned on a card that
    holds cashback and is not yet released (or refunded).
    """

    # The member's and the card's keys are served by the indexes below, led by the app.
    app = models.ForeignKey("apps_auth.App", on_delete=models.PROTECT, related_name="wallets")
    member = models.ForeignKey(
        "members.Member", on_delete=models.PROTECT, related_name="wallets", db_index=False
    )
    card = models.ForeignKey(
        "cards.Card", on_delete=models.PROTECT, related_name="wallets", db_index=False
    )
    balance = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal(0))
    pending_balance = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal(0))
    # How many entries the wallet has: history's total without counting a million rows.
    entries_count = models.PositiveBigIntegerField(default=0)
    # When all the spendable cashback expires unless the member earns on the card before: each
    # earning sets it to its time plus the card's `cashback_inactivity_days` (null: the card has
    # none, or no earning since). Settling a wallet past it brings each lot's expiry forward to
    # it and clears it (`cashback.services.ledger.wallet_expire_due`).
    inactive_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = WalletManager()

    # Set by `Wallet.objects.move`, for the entry that follows the move.
    next_entry_id: int | None = None
    last_entry_at: datetime | None = None
    # Set by `Wallet.objects.programme_facts` (`lots_read`: the two dates after it are).
    lots_read: bool = False
    next_available_at: datetime | None = None
    next_expiry_at: datetime | None = None
    has_earned: bool = False
    member_tier_id: int | None = None
    rule_uses: list[dict] | None = None
    budgets_left: dict[int, Decimal] | None = None
    fresh: bool = True

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["app", "member", "card"], name="wallet_member_card"),
            models.CheckConstraint(condition=Q(balance__gte=0), name="wallet_balance_gte_0"),
            models.CheckConstraint(
                condition=Q(pending_balance__gte=0), name="wallet_pending_balance_gte_0"
            ),
        ]
        indexes = [
            # A card's wallets (whether its currency may change).
            models.Index(fields=["app", "card"], name="wallet_card"),
            # The wallets the expiry sweep settles for inactivity: only those with a date, which
            # settling clears.
            models.Index(
                fields=["app", "inactive_at"],
                condition=Q(inactive_at__isnull=False),
                name="wallet_inactive",
            ),
        ]

    def __str__(self) -> str:
        return f"Wallet {self.pk}: member {self.member_id}, card {self.card_id}"


class EntryType(models.TextChoices):
    EARNING = "earning", "Earning"
    REDEMPTION = "redemption", "Redemption"
    REFUND = "refund", "Refund"
    ADJUSTMENT = "adjustment", "Adjustment"
    RELEASE = "release", "Release"
    EXPIRATION = "expiration", "Expiration"
    REVERSAL = "reversal", "Reversal"


EVENTS = {
    EntryType.EARNING: "cashback_earned",
    EntryType.REDEMPTION: "cashback_redeemed",
    EntryType.REFUND: "cashback_refunded",
    EntryType.ADJUSTMENT: "cashback_adjusted",
    EntryType.RELEASE: "cashback_released",
    EntryType.EXPIRATION: "cashback_expired",
    EntryType.REVERSAL: "cashback_redemption_reversed",
}


# What `ENTRY_APPEND_FOR_PROGRAMME` is given for an earning that counts no use, takes from no
# budget, or moves a wallet already moved.
_NO_USES = {"uses_member": None, "uses_rules": "{}", "uses_pers": "{}", "uses_starts": "{}"}
_NO_BUDGETS = {"budget_rules": "{}", "budget_taken": "{}"}
_NO_MOVE = {"move_amount": None, "move_pending": None, "move_inactive_at": None, "move_now": None}


class LedgerEntryManager(models.Manager["LedgerEntry"]):
    def append(
        self,
        *,
        webhook_event: Callable[["LedgerEntry"], EventDraft],
        lot: tuple[datetime, datetime | None] | None = None,
        spend: Decimal | None = None,
        rule_uses: dict | None = None,
        rule_budgets: dict | None = None,
        move: dict | None = None,
        **fields: Any,
    ) -> "LedgerEntry":
        """Saves a new entry with its webhook event in one statement
        (`cashback.queries.ENTRY_APPEND`; `ENTRY_APPEND_SPENDING` with `spend`;
        `ENTRY_APPEND_FOR_PROGRAMME` with `rule_uses`, `rule_budgets` or `move`) and returns it.

        `fields` name the entry's `id` and its `created_at` (no earlier than the wallet's last
        entry's), as `Wallet.objects.move` gives them, so that the entry, and its lot, are whole
        before the statement, and `webhook_event`, which makes the entry's event from the entry,
        can tell of them: the statement saves the event too and reads the app's endpoints that
        take it (`entry.webhook_event`, an `EventDraft`).

        With `lot` (a credit's `available_at` and `expires_at`, None: never, as the caller
        computed them from the entry's `created_at` and its card: `_lot_of`), the same
        statement opens the entry's lot (`entry.lot`): what the entry holds is pending until
        `available_at`, what it credits is spendable at once. With `spend`, it takes that much
        out of the wallet's lots, the oldest first, and records the entry's movements, as
        `Lot.objects.spend` does.

        With `rule_uses` (an earning's, `programme.services.rule_uses_params`), the same
        statement counts a use of each rule its breakdown applied; with `rule_budgets`
        (`programme.services.EarnCounters.budget_params`), it takes what the breakdown gave of
        each rule's budget, or fails with the constraint `rule_budget_spent_within`. With `move`
        (`move_amount`, `move_pending`, `move_inactive_at`, `move_now`), it moves the wallet,
        which the caller holds locked and read (`Wallet.objects.programme_facts`), and saves the
        entry only then.

        The row holds what `create()` would write: each field's default, each value as its field
        prepares it for the database. Besides, the statement numbers the entry in its wallet
        (`sequence`) and among the wallet's entries of its type (`type_sequence`), one after the
        wallet's last, and keeps `created_at` from going back in time within the wallet (never
        before the last entry's), so that the wallet's entries in time order are its entries in
        sequence order, which is what `history_page` relies on. The caller holds the wallet's
        row locked (`Wallet.objects.move`), so entries are numbered one at a time.

        What `save()` does besides (signals, parent models, state checks) is left out: it costs
        an earn more CPU than its own SQL. The ledger is append-only; entries are never saved
        again.
        """
        entry = self.model(**fields)
        if entry.pk is None or entry.created_at is None:
            raise ValueError("An entry is saved with its id and created_at.")
        if spend is not None and lot is not None:
            raise ValueError("An entry that spends lots opens none.")
        using = self._db or router.db_for_write(self.model)
        params = prepared_values(entry, using, kept=("created_at",))
        params["id"] = entry.pk
        del params["sequence"], params["type_sequence"]  # the statement numbers the entry
        sql = ENTRY_APPEND
        if spend is not None:
            sql = ENTRY_APPEND_SPENDING
            params.update(spend_amount=spend, spend_first=None)
        else:
            params["lot_available_at"], params["lot_expires_at"] = lot or (None, None)
            if lot is not None:  # the lot as the statement opens it
                entry.lot = _lot_of(entry, *lot)
        if rule_uses is not None or rule_budgets is not None or move is not None:
            if lot is None:
                raise ValueError("An earning opens its lot.")
            sql = ENTRY_APPEND_FOR_PROGRAMME
            params.update(rule_uses or _NO_USES)
            params.update(rule_budgets or _NO_BUDGETS)
            params.update(move or _NO_MOVE)
        draft = webhook_event(entry)
        params.update(draft.params())
        with prepared_cursor(using) as cursor:
            cursor.execute(sql, params)
            saved = cursor.fetchone()
        if saved is None:  # the wallet to move with the entry is gone
            raise RuntimeError(f"Entry {entry.pk} was not saved: its wallet was not moved.")
        pk, created_at, entry.sequence, entry.type_sequence, lot_id, *event = saved
        if (pk, created_at) != (entry.pk, entry.created_at):
            raise RuntimeError(f"Entry {entry.pk} was saved otherwise than its event tells.")
        entry._state.adding = False
        entry._state.db = using
        if lot is not None:  # made before the statement, as it saved it
            mark_saved(entry.lot, lot_id, using)
        event_id, body, endpoint_ids = event
        draft.saved(pk=event_id, body=body, endpoint_ids=endpoint_ids, using=using)
        entry.webhook_event = draft
        return entry

    def history_page(
        self,
        *,
        wallet_id: int,
        entries_count: int,
        app_id: int | None = None,
        limit: int,
        offset: int,
        entry_type: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> tuple[list["LedgerEntry"], int]:
        """One page of a wallet's entries, newest first, narrowed by type and time; and how many
        entries the narrowing holds in all. `entries_count` is the wallet's, `app_id` its app (read
        from the wallet, one query more, when not given).

        Whatever the narrowing and the offset, a few index lookups: the wallet's entries in time
        order are its entries in `sequence` order (and those of one type in `type_sequence`
        order; see `append`). Without a narrowing the entries are numbered 1 to
        `entries_count`; with one, the oldest and the newest entry in the time range
        (`cashback.queries.HISTORY_ENDS`, `HISTORY_ENDS_OF_TYPE`, one lookup each) give the
        range's numbers and so its count. The page is a range of those numbers
        (`HISTORY_RANGE`, `HISTORY_RANGE_OF_TYPE`). On the connection the router picks for
        reads.
        """
        using = self._db or router.db_for_read(self.model)
        if app_id is None:
            app_id = (
                Wallet.objects.db_manager(using).values_list("app_id", flat=True).get(pk=wallet_id)
            )
        typed = entry_type is not None
        params: dict[str, Any] = {
            "app": app_id,
            "wallet": wallet_id,
            "type": entry_type,
            "after": created_after,
            "before": created_before,
        }
        with prepared_cursor(using) as cursor:
            if typed or created_after is not None or created_before is not None:
                cursor.execute(HISTORY_ENDS_OF_TYPE if typed else HISTORY_ENDS, params)
                oldest, newest = cursor.fetchone()
            else:
                oldest, newest = 1, entries_count
            if oldest is None or newest is None or newest < oldest:
                return [], 0
            high = newest - offset
            low = max(oldest, high - limit + 1)
            if high < low:
                return [], newest - oldest + 1
            page = HISTORY_RANGE_OF_TYPE if typed else HISTORY_RANGE
            cursor.execute(page, {**params, "low": low, "high": high})
            rows = cursor.fetchall()
        return from_rows(self.model, rows, using), newest - oldest + 1


class LedgerEntry(models.Model):
    """One balance change, append-only. Its id is the API's `transaction_id`.

    `amount` is the signed change of the spendable balance (redemptions, refunds and expirations
    negative) and `pending_amount` that of the pending balance (a held earning positive, its
    release and a refund of held cashback negative); `balance_after` and `pending_balance_after`
    are the wallet's balances right after it, so the entries of a wallet replay both. An
    earning's cashback is `amount + pending_amount`: one of them is 0.
    """

    # Each foreign key is served by one of the indexes below, each led by the app.
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
    event = models.CharField(max_length=32)
    amount = models.DecimalField(max_digits=20, decimal_places=4)
    balance_after = models.DecimalField(max_digits=20, decimal_places=4)
    pending_amount = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal(0))
    pending_balance_after = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal(0))
    purchase_amount = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    refund_amount = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    cashback_percentage = models.DecimalField(max_digits=7, decimal_places=4, null=True, blank=True)
    # What a refund set out to take back but could not, the balance being too low (a claim
    # that a later reversal settles: `ClaimSettlement`); what a reversal gave back into lots
    # that had expired, written off again at once.
    unrecovered_amount = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal(0))
    # The earning a refund, release or expiration concerns (an expiration's may be the positive
    # adjustment that made its lot); the redemption a reversal undoes.
    original_entry = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="followers",
        db_index=False,
    )
    reference = models.CharField(max_length=255, null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # Why an earning credited what it did: `[{"source", "rule_id", "name", "amount",
    # "lines"}]` (amounts as strings, adding up to the entry's; `lines` the basket lines each
    # contribution was earned on, by their index); what a refund of such an earning took back of
    # each contribution, negative, in the same shape. Null: an entry of neither kind, or one
    # made before breakdowns were kept.
    breakdown = models.JSONField(null=True, blank=True)
    # The basket an earning was made with, `[{"sku", "category", "amount", "quantity"}]`, or the
    # lines a refund gave back, `[{"sku", "amount"}]`; null: none given.
    lines = models.JSONField(null=True, blank=True)
    # An earning that created its member (an unknown email and phone), so that its answer, and
    # any replay of it, says so.
    member_created = models.BooleanField(default=False, db_default=False)
    # A digest of the request that made the entry, to tell a replay from a reused reference.
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    # The staff user who made an adjustment; reason and other context stay in `metadata`.
    # Not indexed: every index of the ledger leads with the app, and a staff user, who works
    # across apps, is looked up by neither (only the rare deletion of a user scans for them).
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # The second staff user who approved an adjustment past the approval threshold.
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # The Idempotency-Key that made it: at most one entry per key, whatever crashes in between.
    idempotency_record = models.OneToOneField(
        "apps_auth.IdempotencyRecord",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="entry",
    )
    # The entry's number in its wallet (1 for the first) and among the wallet's entries of its
    # type; numbered by `LedgerEntryManager.append`, in the order of `created_at`.
    sequence = models.PositiveBigIntegerField()
    type_sequence = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    objects = LedgerEntryManager()

    # Set by `LedgerEntry.objects.append` when it saved the entry's webhook event with it.
    webhook_event: EventDraft | None = None

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(
                fields=["app", "card", "entry_type", "reference"],
                condition=Q(reference__isnull=False),
                name="entry_reference_per_card_and_type",
            ),
            # A refund on an empty wallet is recorded with 0 so that it still counts against its
            # earning, and a reversal whose whole amount settled earlier refunds' claims
            # (`ClaimSettlement`) with 0 so that the redemption is reversed once; every other
            # entry moves money.
            models.CheckConstraint(
                condition=~Q(amount=0)
                | ~Q(pending_amount=0)
                | Q(entry_type__in=["refund", "reversal"]),
                name="entry_amount_nonzero",
            ),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="entry_balance_gte_0"),
            models.CheckConstraint(
                condition=Q(pending_balance_after__gte=0), name="entry_pending_balance_gte_0"
            ),
            # One reversal per redemption, one release per earning, whatever runs at once.
            models.UniqueConstraint(
                fields=["app", "original_entry"],
                condition=Q(entry_type__in=["reversal", "release"]),
                name="entry_reversed_or_released_once",
            ),
            # History's pages are ranges of these numbers.
            models.UniqueConstraint(
                fields=["app", "wallet", "sequence"], name="entry_wallet_sequence"
            ),
            models.UniqueConstraint(
                fields=["app", "wallet", "entry_type", "type_sequence"],
                name="entry_wallet_type_sequence",
            ),
        ]
        indexes = [
            # History's time ranges: all entries, and those of one type.
            models.Index(
                fields=["app", "wallet", "-created_at", "-id"], name="entry_wallet_history"
            ),
            models.Index(
                fields=["app", "wallet", "entry_type", "-created_at", "-id"],
                name="entry_wallet_type_history",
            ),
            # The entries that concern an earning or a redemption (its refunds, its reversal).
            models.Index(fields=["app", "original_entry"], name="entry_original"),
            # The back office lists, filters and exports by these, newest first.
            models.Index(fields=["app", "-created_at", "-id"], name="entry_newest"),
            models.Index(fields=["app", "card", "-created_at"], name="entry_card_newest"),
            models.Index(fields=["app", "entry_type", "-created_at"], name="entry_type_newest"),
            models.Index(fields=["app", "reference"], name="entry_reference"),
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

    @property
    def total_amount(self) -> Decimal:
        """What the entry moved, spendable and pending together (an earning's cashback, all a
        refund took back)."""
        return self.amount + self.pending_amount


class LotManager(models.Manager["Lot"]):
    def spend(self, *, entry: "LedgerEntry", amount: Decimal, first: "Lot | None" = None) -> None:
        """Takes `amount` out of the entry's wallet's lots, `first` before the others and then
        the oldest first (by `available_at`), and records what came out of each as the entry's
        movements.

        One statement (`cashback.queries.LOT_SPEND`): a running total over the wallet's lots
        with something left picks them, an UPDATE takes from each, an INSERT records each
        movement. The caller holds the wallet's row locked and takes no more than the wallet's
        spendable balance, which the lots add up to.
        """
        if amount <= 0:
            return
        using = self._db or router.db_for_write(self.model)
        params: dict[str, Any] = {
            "app_id": entry.app_id,
            "wallet_id": entry.wallet_id,
            "id": entry.pk,
            "spend_amount": amount,
            "spend_first": first.pk if first is not None else None,
        }
        with prepared_cursor(using) as cursor:
            cursor.execute(LOT_SPEND, params)


class Lot(models.Model):
    """Cashback credited together, followed until it is spent, refunded or expires: one per
    earning and per positive adjustment.

    `pending` is what is held and not yet released; `remaining` what can still be spent. Debits
    without a named earning spend the oldest lots first; at `expires_at` (null: never) the rest
    of `remaining` is written off. A wallet's lots add up to its balances, and each lot's
    numbers to its source entry's plus its movements (`verify_ledger` checks both). Changed only
    under the wallet's lock.
    """

    app = models.ForeignKey(
        "apps_auth.App", on_delete=models.PROTECT, related_name="+", db_index=False
    )
    wallet = models.ForeignKey(
        Wallet, on_delete=models.PROTECT, related_name="lots", db_index=False
    )
    source = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="lot")
    pending = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal(0))
    remaining = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal(0))
    available_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    # When the `cashback.expiring` warning went out; it goes once.
    warned_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = LotManager()

    class Meta:
        ordering = ["available_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(pending__gte=0), name="lot_pending_gte_0"),
            models.CheckConstraint(condition=Q(remaining__gte=0), name="lot_remaining_gte_0"),
        ]
        indexes = [
            # What a debit spends first, and what the worker releases, expires and warns of.
            # The wallet's lots, whatever is left of them.
            models.Index(fields=["app", "wallet"], name="lot_wallet"),
            models.Index(
                fields=["app", "wallet", "available_at", "id"],
                condition=Q(remaining__gt=0),
                name="lot_spendable",
            ),
            # The sweeps go app by app (`cashback.services.release`, `.expire`).
            models.Index(
                fields=["app", "available_at"], condition=Q(pending__gt=0), name="lot_held"
            ),
            models.Index(
                fields=["app", "expires_at"],
                condition=Q(remaining__gt=0, expires_at__isnull=False),
                name="lot_expiring",
            ),
            # A balance's next expiry, and what of a wallet is past its expiry.
            models.Index(
                fields=["app", "wallet", "expires_at"],
                condition=Q(remaining__gt=0, expires_at__isnull=False),
                name="lot_wallet_expiring",
            ),
            # What of a wallet's held cashback is due: spendable at once, released or not.
            models.Index(
                fields=["app", "wallet", "available_at"],
                condition=Q(pending__gt=0),
                name="lot_wallet_held",
            ),
        ]

    def __str__(self) -> str:
        return f"Lot {self.pk} of entry {self.source_id}: {self.remaining} left"


class LotMovement(models.Model):
    """What one entry took out of, or put back into, one lot (signed, like the entry): a
    redemption's spends, which its reversal puts back; a refund's; a release; an expiration."""

    # The app of the entry and of the lot; each key is served by an index led by it.
    app = models.ForeignKey("apps_auth.App", on_delete=models.PROTECT, related_name="+")
    entry = models.ForeignKey(
        LedgerEntry, on_delete=models.PROTECT, related_name="movements", db_index=False
    )
    lot = models.ForeignKey(Lot, on_delete=models.PROTECT, related_name="movements", db_index=False)
    amount = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal(0))
    pending_amount = models.DecimalField(max_digits=20, decimal_places=4, default=Decimal(0))

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(amount=0) | ~Q(pending_amount=0), name="lot_movement_nonzero"
            ),
        ]
        indexes = [
            models.Index(fields=["app", "entry"], name="lot_movement_entry"),
            models.Index(fields=["app", "lot"], name="lot_movement_lot"),
        ]

    def __str__(self) -> str:
        return f"Entry {self.entry_id} on lot {self.lot_id}: {self.amount}"


class ClaimSettlement(models.Model):
    """What a reversal took toward a refund's claim: the cashback a refund set out to take back
    and could not (its `unrecovered_amount`, the balance being too low) stays owed, and
    cashback that flows back into the wallet later, a reversal of a redemption made before the
    refund, settles it first, so that a refund and a reversal leave the same balance in either
    order. The reversal's own entry is credited net of what it settled, and takes that much out
    of the lots as its movements."""

    app = models.ForeignKey("apps_auth.App", on_delete=models.PROTECT, related_name="+")
    # The refund whose claim is settled; each key is served by an index led by the app.
    refund = models.ForeignKey(
        LedgerEntry, on_delete=models.PROTECT, related_name="settlements", db_index=False
    )
    # The entry that settled it (a reversal).
    entry = models.ForeignKey(
        LedgerEntry, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    amount = models.DecimalField(max_digits=20, decimal_places=4)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="claim_settlement_positive"),
        ]
        indexes = [
            models.Index(fields=["app", "refund"], name="claim_settlement_refund"),
            models.Index(fields=["app", "entry"], name="claim_settlement_entry"),
        ]

    def __str__(self) -> str:
        return f"Entry {self.entry_id} settled {self.amount} of refund {self.refund_id}"


class AdjustmentStatus(models.TextChoices):
    PENDING = "pending", "Waiting for approval"
    APPLIED = "applied", "Applied"  # at once: within the approval threshold over its window
    APPROVED = "approved", "Approved and applied"
    REJECTED = "rejected", "Rejected"


class AdjustmentRequest(models.Model):
    """A staff adjustment as submitted from the back office.

    The form's one-time `token` is unique: a second submission of the same form finds this
    request instead of posting again. Past the approval threshold (with the adjustments posted at
    once within its window; `adjustment_needs_approval`) the request waits, posting nothing,
    until another staff user approves it; its `entry` is the ledger entry it posted.
    """

    # The wallet's app; the wallet's key is served by an index led by it.
    app = models.ForeignKey("apps_auth.App", on_delete=models.PROTECT, related_name="+")
    wallet = models.ForeignKey(
        Wallet, on_delete=models.PROTECT, related_name="adjustment_requests", db_index=False
    )
    amount = models.DecimalField(max_digits=20, decimal_places=4)
    reason = models.CharField(max_length=500)
    # Unique in the app (`adjustment_token_per_app`): a form is for one wallet.
    token = models.UUIDField()
    status = models.CharField(
        max_length=8, choices=AdjustmentStatus.choices, default=AdjustmentStatus.PENDING
    )
    # Staff users, across apps: not indexed (see `LedgerEntry.created_by`).
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # Who approved or rejected it; nobody for one applied at once.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
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
            models.UniqueConstraint(fields=["app", "token"], name="adjustment_token_per_app"),
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
            models.Index(fields=["app", "status", "-created_at"], name="adjustment_request_status"),
            models.Index(fields=["app", "wallet"], name="adjustment_request_wallet"),
        ]

    def __str__(self) -> str:
        return f"Adjustment request {self.pk}: {self.amount} ({self.status})"


def _lot_of(entry: "LedgerEntry", available_at: datetime, expires_at: datetime | None) -> "Lot":
    """The lot `ENTRY_APPEND` opens for the entry, before it does (no id yet): the statement
    saves these dates as they are."""
    return Lot(
        app_id=entry.app_id,
        wallet_id=entry.wallet_id,
        source_id=entry.pk,
        pending=entry.pending_amount,
        remaining=entry.amount,
        available_at=available_at,
        expires_at=expires_at,
        created_at=entry.created_at,
    )
