from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from django.conf import settings
from django.db import connection, connections, models, router
from django.db.models import F, Q
from django.utils import timezone

from core.rows import (
    array_text,
    from_row,
    from_rows,
    insert_new,
    insert_new_with,
    new,
    prepared_cursor,
    quote,
    select_list,
)
from members.models import Member, member_lookup
from programme.services import RULE_BUDGETS_TAKE, RULE_USES_COUNT
from webhooks.models import EventDraft, WebhookEvent, event_endpoints_sql, event_insert_sql


class WalletManager(models.Manager["Wallet"]):
    def insert_new(self, **fields: Any) -> "Wallet | None":
        """Saves a new wallet with these fields and returns it as `move` returns a wallet: with
        the id its first entry takes (`next_entry_id`), locked (as a new row is) until the
        transaction ends. None when the member has one on the card already, and nothing is
        written (`core.rows.insert_new`).

        A wallet made for its first entry is saved as that entry leaves it (`balance`,
        `pending_balance`, `entries_count` 1), and not moved after: a statement less."""
        using = self._db or router.db_for_write(self.model)
        wallet = new(self.model, **fields)
        returned = insert_new(wallet, using, returning=_next_entry_id_sql())
        if returned is None:
            return None
        (wallet.next_entry_id,) = returned
        return wallet

    def insert_new_with_member(self, member: Member, **fields: Any) -> "Wallet | None":
        """Saves the new `member` and its new wallet with these fields in one statement, and
        returns the wallet as `insert_new` does (its `member` the saved member); None when the
        member's email or phone is its app's already, and nothing is written
        (`core.rows.insert_new_with`)."""
        using = self._db or router.db_for_write(self.model)
        wallet = new(self.model, **fields)
        returned = insert_new_with(
            member, wallet, link="member", using=using, returning=_next_entry_id_sql()
        )
        if returned is None:
            return None
        (wallet.next_entry_id,) = returned
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

        One `UPDATE ... RETURNING` (`_move_sql`), which locks the row until the transaction
        ends and, by email or phone, finds the member in the same statement: the ORM's
        `update()` returns no row, and reading the balance back (or the member first) would
        cost a round trip more on every operation. The check constraint refuses a balance below
        zero.
        """
        lookup = member_lookup(member_id=member_id, email=email, phone=phone)
        if lookup is None:
            raise ValueError("A member id, email or phone is needed.")
        key, member = lookup
        using = self._db or router.db_for_write(self.model)
        params: dict[str, Any] = {
            "amount": amount,
            "pending": pending_amount,
            "now": at or timezone.now(),
            "app": app_id,
            "card": card_id,
            "member": member,
        }
        if earning:
            params["inactive_at"] = inactive_at
        sql = _move_sql(key, covered=covered, unlocked=unlocked, settled=settled, earning=earning)
        with prepared_cursor(using) as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
        if row is None:
            return None
        *columns, next_entry_id, last_entry_at = row
        wallet = from_row(self.model, columns, using)
        wallet.next_entry_id, wallet.last_entry_at = next_entry_id, last_entry_at
        return wallet


# The member's wallet on the card, read with when it next needs settling before an earn decides
# (its earliest held lot's `available_at`, its earliest `expires_at` of a lot with something
# left: what `wallet_settle` settles; the wallet's own `inactive_at` comes with it) and what the
# card's programme asks of the member: whether it earned on the card before, its tier on the
# card, its uses of the card's active rules that limit uses (each rule's latest period of its
# own kind, as the rule's row has it now, and its uses in all; `programme.services.MemberUses`:
# two index probes a rule however long the member's history), and what is left of the budgets
# of the rules %(budgeted)s (amounts as text: JSON would make them floats). Each an index probe.
# No parameter is a time: the plan is the same at every earn, and PostgreSQL keeps the prepared
# statement's generic plan instead of planning it again each time (which cost more than running
# it). `fresh` is whether the row is the version the statement's snapshot holds: always so here;
# see `LOCK_FOR_PROGRAMME`. A quote reads it as it stands.
PROGRAMME_FACTS = """
SELECT w.id, w.inactive_at,
    (SELECT min(x.available_at) FROM cashback_lot x WHERE x.app_id = w.app_id
        AND x.wallet_id = w.id AND x.pending > 0) AS next_available_at,
    (SELECT min(x.expires_at) FROM cashback_lot x WHERE x.app_id = w.app_id
        AND x.wallet_id = w.id AND x.remaining > 0 AND x.expires_at IS NOT NULL)
        AS next_expiry_at,
    EXISTS (SELECT 1 FROM cashback_ledgerentry e WHERE e.app_id = w.app_id
        AND e.wallet_id = w.id AND e.entry_type = 'earning') AS earned,
    (SELECT t.tier_id FROM programme_membertier t WHERE t.app_id = w.app_id
        AND t.card_id = w.card_id AND t.member_id = w.member_id) AS member_tier_id,
    (SELECT json_agg(json_build_object('rule', r.id, 'per', r.per,
            'start', latest.period_start, 'uses', latest.uses, 'total', ever.uses))
        FROM programme_earningrule r
        LEFT JOIN LATERAL (SELECT u.period_start, u.uses FROM programme_ruleuse u
            WHERE u.app_id = w.app_id AND u.member_id = w.member_id AND u.rule_id = r.id
            AND u.per = r.per ORDER BY u.period_start DESC LIMIT 1) latest ON true
        LEFT JOIN programme_ruleuse ever ON ever.app_id = w.app_id
            AND ever.member_id = w.member_id AND ever.rule_id = r.id AND ever.per = 'ever'
            AND ever.period_start = DATE '0001-01-01'
        WHERE r.app_id = w.app_id AND r.card_id = w.card_id AND r.active
        AND r.max_uses_per_member IS NOT NULL) AS rule_uses,
    (SELECT json_object_agg(r.id, (r.budget - r.budget_spent)::text)
        FROM programme_earningrule r WHERE r.app_id = w.app_id
        AND r.id = ANY(%(budgeted)s::bigint[]) AND r.budget IS NOT NULL) AS budgets_left,
    w.xmin = (SELECT v.xmin FROM cashback_wallet v WHERE v.app_id = w.app_id AND v.id = w.id)
        AS fresh
FROM cashback_wallet w
WHERE w.app_id = %(app)s AND w.card_id = %(card)s AND w.member_id = %(member)s
"""
# The same with the wallet locked until the transaction ends, and what its next entry needs: its
# balances, the id the entry takes (drawn from the entries' sequence) and the time of its last
# entry, so that the earn's entry moves the wallet in its own statement (`WALLET_MOVE`). An
# earn's first statement on a card with a programme. A statement that waited for the lock reads
# its subqueries as they stood when it started (its snapshot), and one that started just before
# another's commit does too, though it finds the row free: then the row it locked (whose own
# columns are the latest) is a later version than its snapshot's (every writer of these facts
# changes the wallet's row in its transaction: an entry moves it; a tier set apart from an entry
# touches it, `cashback.services.tiers`), `fresh` is false, and the earn runs the statement
# again, which reads them as they are under the lock.
LOCK_FOR_PROGRAMME = """
SELECT w.id, w.inactive_at,
    (SELECT min(x.available_at) FROM cashback_lot x WHERE x.app_id = w.app_id
        AND x.wallet_id = w.id AND x.pending > 0) AS next_available_at,
    (SELECT min(x.expires_at) FROM cashback_lot x WHERE x.app_id = w.app_id
        AND x.wallet_id = w.id AND x.remaining > 0 AND x.expires_at IS NOT NULL)
        AS next_expiry_at,
    EXISTS (SELECT 1 FROM cashback_ledgerentry e WHERE e.app_id = w.app_id
        AND e.wallet_id = w.id AND e.entry_type = 'earning') AS earned,
    (SELECT t.tier_id FROM programme_membertier t WHERE t.app_id = w.app_id
        AND t.card_id = w.card_id AND t.member_id = w.member_id) AS member_tier_id,
    (SELECT json_agg(json_build_object('rule', r.id, 'per', r.per,
            'start', latest.period_start, 'uses', latest.uses, 'total', ever.uses))
        FROM programme_earningrule r
        LEFT JOIN LATERAL (SELECT u.period_start, u.uses FROM programme_ruleuse u
            WHERE u.app_id = w.app_id AND u.member_id = w.member_id AND u.rule_id = r.id
            AND u.per = r.per ORDER BY u.period_start DESC LIMIT 1) latest ON true
        LEFT JOIN programme_ruleuse ever ON ever.app_id = w.app_id
            AND ever.member_id = w.member_id AND ever.rule_id = r.id AND ever.per = 'ever'
            AND ever.period_start = DATE '0001-01-01'
        WHERE r.app_id = w.app_id AND r.card_id = w.card_id AND r.active
        AND r.max_uses_per_member IS NOT NULL) AS rule_uses,
    (SELECT json_object_agg(r.id, (r.budget - r.budget_spent)::text)
        FROM programme_earningrule r WHERE r.app_id = w.app_id
        AND r.id = ANY(%(budgeted)s::bigint[]) AND r.budget IS NOT NULL) AS budgets_left,
    w.xmin = (SELECT v.xmin FROM cashback_wallet v WHERE v.app_id = w.app_id AND v.id = w.id)
        AS fresh,
    w.balance, w.pending_balance,
    nextval(pg_get_serial_sequence('cashback_ledgerentry', 'id')) AS next_entry_id,
    (SELECT e.created_at FROM cashback_ledgerentry e WHERE e.app_id = w.app_id
        AND e.wallet_id = w.id ORDER BY e.sequence DESC LIMIT 1) AS last_entry_at
FROM cashback_wallet w
WHERE w.app_id = %(app)s AND w.card_id = %(card)s AND w.member_id = %(member)s
FOR UPDATE OF w
"""
# Moves the wallet %(wallet)s, which the caller holds locked and read (`LOCK_FOR_PROGRAMME`), by
# its entry: run by the statement that saves the entry (`LedgerEntryManager.append`), a round
# trip less than `Wallet.objects.move`. The entry is not saved unless the wallet is moved.
WALLET_MOVE = """
UPDATE cashback_wallet w
SET balance = w.balance + %(move_amount)s, pending_balance = w.pending_balance + %(move_pending)s,
    entries_count = w.entries_count + 1, inactive_at = %(move_inactive_at)s::timestamptz,
    updated_at = %(move_now)s
WHERE w.app_id = %(app)s AND w.id = %(wallet)s
RETURNING w.id
"""


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


class LedgerEntryManager(models.Manager["LedgerEntry"]):
    def append(
        self,
        *,
        lot: tuple[datetime, datetime | None] | None = None,
        webhook_event: Callable[["LedgerEntry"], EventDraft] | None = None,
        spend: Decimal | None = None,
        rule_uses: dict | None = None,
        rule_budgets: dict | None = None,
        move: dict | None = None,
        **fields: Any,
    ) -> "LedgerEntry":
        """Saves a new entry in one `INSERT ... RETURNING` (`_append_sql`) and returns it.

        With `rule_uses` (an earning's, `programme.services.rule_uses_params`), the same
        statement counts a use of each rule its breakdown applied (`RULE_USES_COUNT`); with
        `rule_budgets` (`programme.services.EarnCounters.budget_params`), it takes what the
        breakdown gave of each rule's budget (`RULE_BUDGETS_TAKE`), or fails with the
        constraint `rule_budget_spent_within`. With `move` (%(move_amount)s, %(move_pending)s,
        %(move_inactive_at)s, %(move_now)s), it moves the wallet, which the caller holds
        locked and read (`WALLET_MOVE`), and saves the entry only then.

        With `lot` (a credit's `available_at` and `expires_at`, None: never, as the caller
        computed them from the entry's `created_at` and its card: `_lot_of`), the same
        statement opens the entry's lot (`entry.lot`): what the entry holds is pending until
        `available_at`, what it credits is spendable at once. A lot is opened with the entry's
        event only, whose `created_at` is known before the statement.

        With `webhook_event`, which makes the entry's webhook event from the entry, the same
        statement saves the event too and reads the app's endpoints that take it
        (`entry.webhook_event`, an `EventDraft`): then `fields` name the entry's `id` and its
        `created_at` (no earlier than the wallet's last entry's), as `Wallet.objects.move` gives
        them, so that the entry, and its lot, are whole before the statement and the event can
        tell of them.

        With `spend` (and `webhook_event`, which gives the entry its id first), the same
        statement takes that much out of the wallet's lots, the oldest first, and records the
        entry's movements, as `Lot.objects.spend` does.

        The row holds what `create()` would write: each field's default, `auto_now_add`, each
        value as its field prepares it for the database. Besides, the statement numbers the entry
        in its wallet (`sequence`) and among the wallet's entries of its type (`type_sequence`),
        one after the wallet's last, and keeps `created_at` from going back in time within the
        wallet (never before the last entry's), so that the wallet's entries in time order are
        its entries in sequence order, which is what `history_page` relies on. The caller holds
        the wallet's row locked (`Wallet.objects.move`), so entries are numbered one at a time.

        What `save()` does besides (signals, parent models, state checks) is left out: it costs
        an earn more CPU than its own SQL (see the README's benchmark). The ledger is
        append-only; entries are never saved again.
        """
        entry = new(self.model, **fields)
        using = self._db or router.db_for_write(self.model)
        connection = connections[using]
        with_event = webhook_event is not None
        if with_event and (entry.pk is None or entry.created_at is None):
            raise ValueError("An entry saved with its event needs its id and created_at.")
        if spend is not None and not with_event:
            raise ValueError("An entry spends its lots in its statement with its event only.")
        if lot is not None and not with_event:
            raise ValueError("An entry opens its lot in its statement with its event only.")
        sql, columns = _append_sql(
            with_lot=lot is not None,
            with_event=with_event,
            with_spend=spend is not None,
            with_uses=rule_uses is not None,
            with_budgets=rule_budgets is not None,
            with_move=move is not None,
        )
        params: dict[str, Any] = {
            f"c{i}": field.get_db_prep_save(
                entry.created_at if field.name == "created_at" and with_event
                else field.pre_save(entry, True),
                connection,
            )
            for i, field in enumerate(columns)
        }  # fmt: skip
        params["app"], params["wallet"] = entry.app_id, entry.wallet_id
        params["type"] = entry.entry_type
        if rule_uses is not None:
            params.update(rule_uses)
        if rule_budgets is not None:
            params.update(rule_budgets)
        if move is not None:
            params.update(move)
        if spend is not None:
            params.update(entry=entry.pk, amount=spend, first=None)
        if lot is not None:  # the lot as the statement opens it
            entry.lot = _lot_of(entry, *lot)
            params["available_at"], params["expires_at"] = lot
        draft = None
        if webhook_event is not None:
            draft = webhook_event(entry)
            params.update(draft.params())
        with prepared_cursor(using) as cursor:
            cursor.execute(sql, params)
            saved = cursor.fetchone()
        if saved is None:  # the wallet to move with the entry is gone
            raise RuntimeError(f"Entry {entry.pk} was not saved: its wallet was not moved.")
        pk, created_at, entry.sequence, entry.type_sequence, *more = saved
        if with_event and (pk, created_at) != (entry.pk, entry.created_at):
            raise RuntimeError(f"Entry {entry.pk} was saved otherwise than its event tells.")
        entry.pk, entry.created_at = pk, created_at
        entry._state.adding = False
        entry._state.db = using
        if lot is not None:  # made before the statement, as it saved it
            lot_id, *more = more
            entry.lot.pk = lot_id
            entry.lot._state.adding = False
            entry.lot._state.db = using
        if draft is not None:
            event_id, body, endpoint_ids = more
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
        (`_history_ends_sql`, one lookup each) give the range's numbers and so its count. The
        page is a range of those numbers (`_history_range_sql`). Written out, on the connection
        the router picks for reads.
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
                ends = _history_ends_sql(
                    typed=typed, after=created_after is not None, before=created_before is not None
                )
                cursor.execute(ends, params)
                oldest, newest = cursor.fetchone()
            else:
                oldest, newest = 1, entries_count
            if oldest is None or newest is None or newest < oldest:
                return [], 0
            high = newest - offset
            low = max(oldest, high - limit + 1)
            if high < low:
                return [], newest - oldest + 1
            cursor.execute(_history_range_sql(typed=typed), {**params, "low": low, "high": high})
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

        One statement (`_spend_sql`): a running total over the wallet's lots with something
        left picks them, an UPDATE takes from each, an INSERT records each movement. The caller
        holds the wallet's row locked and takes no more than the wallet's spendable balance,
        which the lots add up to.
        """
        if amount <= 0:
            return
        using = self._db or router.db_for_write(self.model)
        params: dict[str, Any] = {
            "app": entry.app_id,
            "wallet": entry.wallet_id,
            "entry": entry.pk,
            "amount": amount,
            "first": first.pk if first is not None else None,
        }
        with prepared_cursor(using) as cursor:
            cursor.execute(_spend_sql(), params)


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


@cache
def _move_sql(
    key: str,
    *,
    covered: bool = False,
    unlocked: bool = False,
    settled: bool = False,
    earning: bool = False,
) -> str:
    """The move of the wallet of the member whose `key` field (id, email or phone) is
    %(member)s; by email or phone, the member of the app %(app)s; `covered`, only when the
    spendable balance stays at or above zero; `unlocked`, only when the member's PIN is not
    locked at %(now)s; `settled`, only when none of the wallet's lots is due for release or
    past its expiry at %(now)s (one probe of `lot_wallet_held` and one of
    `lot_wallet_expiring`) and the wallet is not past its `inactive_at` (the row's own column,
    read before the move sets it); `earning`, setting `inactive_at` to %(inactive_at)s."""
    meta = Wallet._meta
    column = {field.name: quote(field.column) for field in meta.concrete_fields}
    balance, count = column["balance"], column["entries_count"]
    pending = column["pending_balance"]
    of_member = {f.name: quote(f.column) for f in Member._meta.concrete_fields}
    members = quote(Member._meta.db_table)
    member = "%(member)s"
    if key != "id":
        member = (
            f"(SELECT m.{of_member['id']} FROM {members} m "  # noqa: S608
            f"WHERE m.{of_member['app']} = %(app)s AND m.{of_member[key]} = %(member)s)"
        )
    locked = (
        f"AND NOT EXISTS (SELECT 1 FROM {members} l WHERE l.{of_member['app']} = %(app)s "  # noqa: S608
        f"AND l.{of_member['id']} = w.{column['member']} "
        f"AND l.{of_member['pin_locked_until']} > %(now)s) "
    )
    lot = {f.name: quote(f.column) for f in Lot._meta.concrete_fields}
    lots = quote(Lot._meta.db_table)
    of_wallet = (
        f"FROM {lots} x WHERE x.{lot['app']} = %(app)s AND x.{lot['wallet']} = w.{column['id']}"
    )
    unsettled = (
        f"AND NOT EXISTS (SELECT 1 {of_wallet} AND x.{lot['pending']} > 0 "
        f"AND x.{lot['available_at']} <= %(now)s) "
        f"AND NOT EXISTS (SELECT 1 {of_wallet} AND x.{lot['remaining']} > 0 "
        f"AND x.{lot['expires_at']} IS NOT NULL AND x.{lot['expires_at']} <= %(now)s) "
        f"AND (w.{column['inactive_at']} IS NULL OR w.{column['inactive_at']} > %(now)s) "
    )
    return (
        f"UPDATE {quote(meta.db_table)} w SET "  # noqa: S608  names from _meta, values bound
        f"{balance} = {balance} + %(amount)s, {pending} = {pending} + %(pending)s, "
        f"{count} = {count} + 1, "
        + (f"{column['inactive_at']} = %(inactive_at)s::timestamptz, " if earning else "")
        + f"{column['updated_at']} = %(now)s "
        f"WHERE w.{column['app']} = %(app)s AND w.{column['card']} = %(card)s "
        f"AND w.{column['member']} = {member} "
        + (f"AND w.{balance} + %(amount)s >= 0 " if covered else "")
        + (locked if unlocked else "")
        + (unsettled if settled else "")
        + f"RETURNING {select_list(Wallet, 'w')}, {_next_entry_sql('w')}"
    )


def _next_entry_sql(wallet: str) -> str:
    """The id the next entry of the wallet `wallet` (of the app %(app)s) takes, and the time of
    its last entry."""
    meta = LedgerEntry._meta
    column = {f.name: quote(f.column) for f in meta.concrete_fields}
    return (
        f"{_next_entry_id_sql()}, (SELECT {column['created_at']} "  # noqa: S608  names from _meta
        f"FROM {quote(meta.db_table)} WHERE {column['app']} = %(app)s AND {column['wallet']} = "
        f"{wallet}.{quote(Wallet._meta.pk.column)} "
        f"ORDER BY {column['sequence']} DESC LIMIT 1)"
    )


def _next_entry_id_sql() -> str:
    """The id the next entry takes, drawn from the entries' sequence."""
    meta = LedgerEntry._meta
    return f"nextval(pg_get_serial_sequence('{quote(meta.db_table)}', '{meta.pk.column}'))"


def _lot_of(entry: "LedgerEntry", available_at: datetime, expires_at: datetime | None) -> "Lot":
    """The lot `_append_sql` opens for the entry, before it does (no id yet): the statement
    saves these dates as they are."""
    return new(
        Lot,
        app_id=entry.app_id,
        wallet_id=entry.wallet_id,
        source_id=entry.pk,
        pending=entry.pending_amount,
        remaining=entry.amount,
        available_at=available_at,
        expires_at=expires_at,
        created_at=entry.created_at,
    )


@cache
def _append_sql(
    *,
    with_lot: bool,
    with_event: bool = False,
    with_spend: bool = False,
    with_uses: bool = False,
    with_budgets: bool = False,
    with_move: bool = False,
) -> tuple[str, list[models.Field]]:
    """The INSERT, and the fields whose prepared values it takes as %(c0)s, %(c1)s, ... in its
    column order (the id among them `with_event`), besides %(app)s, %(wallet)s and %(type)s (and,
    `with_lot`, the lot's %(available_at)s and %(expires_at)s, `with_event` an `EventDraft`'s
    parameters, and `with_spend` `_spend_ctes`'); it returns the id, `created_at`, `sequence`
    and `type_sequence` (and the lot's id; and the event's id, its body and its endpoints'
    ids)."""
    meta = LedgerEntry._meta
    numbered = {"sequence", "type_sequence"}
    fields = [
        f
        for f in meta.concrete_fields
        if (with_event or not f.primary_key) and f.name not in numbered
    ]
    column = {f.name: quote(f.column) for f in meta.concrete_fields}
    table = quote(meta.db_table)
    # Cast, as the server binds the parameters (`prepared_cursor`) and cannot infer a type
    # from a SELECT list.
    values = [f"%(c{i})s::{f.cast_db_type(connection)}" for i, f in enumerate(fields)]
    values = [
        f"GREATEST({value}, last.{column['created_at']})" if f.name == "created_at" else value
        for value, f in zip(values, fields, strict=True)
    ]
    # With budgets, the entry's row waits for the budgets' take (below); with a move, for the
    # wallet's, and is made only if the wallet moved: conditions on no row, which PostgreSQL
    # checks once, before it makes the row.
    conditions = (["(SELECT count(*) FROM budgets) >= 0"] if with_budgets else []) + (
        ["(SELECT count(*) FROM wallet_moved) = 1"] if with_move else []
    )
    taken = f"WHERE {' AND '.join(conditions)} " if conditions else ""
    insert = (
        f"INSERT INTO {table} ({', '.join(column[f.name] for f in fields)}, "  # noqa: S608
        f"{column['sequence']}, {column['type_sequence']}) "
        f"SELECT {', '.join(values)}, COALESCE(last.{column['sequence']}, 0) + 1, "
        f"COALESCE(last_of_type.{column['type_sequence']}, 0) + 1 "
        f"FROM (SELECT %(wallet)s::bigint AS wallet_id) w "
        f"LEFT JOIN LATERAL (SELECT {column['created_at']}, {column['sequence']} FROM {table} "
        f"WHERE {column['app']} = %(app)s AND {column['wallet']} = w.wallet_id "
        f"ORDER BY {column['sequence']} DESC LIMIT 1) last "
        f"ON true LEFT JOIN LATERAL (SELECT {column['type_sequence']} FROM {table} "
        f"WHERE {column['app']} = %(app)s AND {column['wallet']} = w.wallet_id "
        f"AND {column['entry_type']} = %(type)s "
        f"ORDER BY {column['type_sequence']} DESC LIMIT 1) last_of_type ON true {taken}"
    )
    returned = [column[name] for name in ("id", "created_at", "sequence", "type_sequence")]
    if not (with_lot or with_event or with_spend or with_uses or with_budgets or with_move):
        return f"{insert}RETURNING {', '.join(returned)}", fields
    kept = ("id", "app", "wallet", "amount", "pending_amount", "created_at", "sequence")
    ctes = []
    if with_budgets:
        # Taken before the entry is inserted (the entry's row waits for their count), so that
        # an earn locks the rules before the entry's unique keys, as one that locked its
        # budgets first does (`programme.services.rule_budgets_lock`): two earns never wait
        # for each other the other way round.
        ctes.append(f"budgets AS ({RULE_BUDGETS_TAKE.strip()})")
    if with_move:
        ctes.append(f"wallet_moved AS ({WALLET_MOVE.strip()})")
    ctes.append(
        f"e AS ({insert}RETURNING {', '.join(column[n] for n in (*kept, 'type_sequence'))})"
    )
    selected = [f"e.{name}" for name in returned]
    sources = ["e"]
    if with_lot:
        lot = {f.name: quote(f.column) for f in Lot._meta.concrete_fields}
        ctes.append(
            f"lot AS (INSERT INTO {quote(Lot._meta.db_table)} ({lot['app']}, {lot['wallet']}, "  # noqa: S608
            f"{lot['source']}, {lot['pending']}, {lot['remaining']}, {lot['available_at']}, "
            f"{lot['expires_at']}, {lot['created_at']}) "
            f"SELECT e.{column['app']}, e.{column['wallet']}, e.{column['id']}, "
            f"e.{column['pending_amount']}, e.{column['amount']}, %(available_at)s::timestamptz, "
            f"%(expires_at)s::timestamptz, e.{column['created_at']} FROM e "
            f"RETURNING {lot['id']})"
        )
        selected.append("lot.*")
        sources.append("lot")
    if with_event:
        event = {f.name: quote(f.column) for f in WebhookEvent._meta.concrete_fields}
        ctes.append(event_insert_sql("ev"))
        selected += [f"ev.{event['id']}", f"ev.{event['body']}", event_endpoints_sql()]
        sources.append("ev")
    if with_spend:  # a data-modifying WITH runs to its end, read or not
        ctes.append(_spend_ctes())
    if with_uses:
        ctes.append(f"uses AS ({RULE_USES_COUNT.strip()})")
    return (
        f"WITH {', '.join(ctes)} SELECT {', '.join(selected)} FROM {', '.join(sources)}",  # noqa: S608
        fields,
    )


def _history_scope(typed: bool) -> tuple[str, str, dict[str, str]]:
    """The table, the condition that picks a wallet's entries (of one type, when `typed`) and
    the columns by field name."""
    meta = LedgerEntry._meta
    column = {f.name: quote(f.column) for f in meta.concrete_fields}
    scope = f"{column['app']} = %(app)s AND {column['wallet']} = %(wallet)s" + (
        f" AND {column['entry_type']} = %(type)s" if typed else ""
    )
    return quote(meta.db_table), scope, column


@cache
def _history_ends_sql(*, typed: bool, after: bool, before: bool) -> str:
    """The numbers (`type_sequence` when `typed`, else `sequence`) of the oldest and the newest
    of a wallet's entries in a time range: one lookup each in `entry_wallet_history` or
    `entry_wallet_type_history` (or the numbers' own unique index), NULL when there is none."""
    table, scope, column = _history_scope(typed)
    number = column["type_sequence" if typed else "sequence"]
    created, pk = column["created_at"], column["id"]
    oldest = (
        f"(SELECT {number} FROM {table} WHERE {scope} AND {created} >= %(after)s "  # noqa: S608
        f"ORDER BY {created}, {pk} LIMIT 1)"
        if after
        else "1"
    )
    newest = (
        f"(SELECT {number} FROM {table} WHERE {scope} AND {created} <= %(before)s "  # noqa: S608
        f"ORDER BY {created} DESC, {pk} DESC LIMIT 1)"
        if before
        else f"(SELECT {number} FROM {table} WHERE {scope} ORDER BY {number} DESC LIMIT 1)"  # noqa: S608
    )
    return f"SELECT {oldest}, {newest}"


@cache
def _history_range_sql(*, typed: bool) -> str:
    """A wallet's entries (of one type, when `typed`) numbered from %(low)s to %(high)s, newest
    first: one range in `entry_wallet_sequence` or `entry_wallet_type_sequence`."""
    table, scope, column = _history_scope(typed)
    number = column["type_sequence" if typed else "sequence"]
    return (
        f"SELECT {select_list(LedgerEntry, 'e')} FROM {table} e "  # noqa: S608  names from _meta
        f"WHERE {scope} AND {number} BETWEEN %(low)s AND %(high)s ORDER BY {number} DESC"
    )


@cache
def _spend_sql() -> str:
    """Takes %(amount)s out of the lots of %(wallet)s of the app %(app)s (%(first)s first, then
    the oldest) and records the movements of %(entry)s."""
    return f"WITH {_spend_ctes()} SELECT 1"


# How many lots, besides a named one, a spend reads before it knows whether they cover it.
SPEND_HEAD = 16


def _spend_ctes() -> str:
    """The common table expressions of a spend (`_spend_sql`): a running total over the
    wallet's lots with something left picks them, an UPDATE takes from each, an INSERT records
    each movement.

    The running total is over the named lot and the `SPEND_HEAD` oldest others, read in the
    order of the `lot_spendable` index, when they cover the amount (nearly always: the oldest
    lot alone usually does); over all of the wallet's lots with something left otherwise. A
    wallet holds a lot per earning, and a spend that read them all cost PostgreSQL a sort of
    hundreds of rows per redemption."""
    lot, movement = (
        {f.name: quote(f.column) for f in model._meta.concrete_fields}
        for model in (Lot, LotMovement)
    )
    lots, movements = quote(Lot._meta.db_table), quote(LotMovement._meta.db_table)
    pk, remaining, available_at = lot["id"], lot["remaining"], lot["available_at"]
    of_wallet = (
        f"FROM {lots} WHERE {lot['app']} = %(app)s AND {lot['wallet']} = %(wallet)s "
        f"AND {remaining} > 0"
    )
    named = f"COALESCE({pk} = %(first)s::bigint, false)"
    return (
        f"head AS (SELECT {pk} AS id, {remaining} AS remaining, {available_at} AS available_at, "  # noqa: S608  names from _meta
        f"true AS named {of_wallet} AND {pk} = %(first)s::bigint "
        f"UNION ALL (SELECT {pk}, {remaining}, {available_at}, false {of_wallet} "
        f"AND {pk} IS DISTINCT FROM %(first)s::bigint "
        f"ORDER BY {available_at}, {pk} LIMIT {SPEND_HEAD})), "
        f"covered AS (SELECT COALESCE(SUM(remaining), 0) >= %(amount)s AS yes FROM head), "
        f"candidates AS (SELECT id, remaining, available_at, named FROM head "
        f"WHERE (SELECT yes FROM covered) "
        f"UNION ALL SELECT {pk}, {remaining}, {available_at}, {named} {of_wallet} "
        f"AND NOT (SELECT yes FROM covered)), "
        f"ordered AS (SELECT id, remaining, "
        f"SUM(remaining) OVER (ORDER BY named DESC, available_at, id) - remaining AS before "
        f"FROM candidates), "
        f"taken AS (SELECT id, LEAST(remaining, %(amount)s - before) AS amount FROM ordered "
        f"WHERE before < %(amount)s), "
        f"spent AS (UPDATE {lots} l SET {remaining} = l.{remaining} - taken.amount FROM taken "
        f"WHERE l.{lot['app']} = %(app)s AND l.{pk} = taken.id "
        f"RETURNING l.{pk} AS id, taken.amount), "
        f"moved AS (INSERT INTO {movements} ({movement['app']}, {movement['entry']}, "
        f"{movement['lot']}, {movement['amount']}, {movement['pending_amount']}) "
        f"SELECT %(app)s, %(entry)s, id, -amount, 0 FROM spent)"
    )
