"""Proof that balances equal their ledgers: used by `verify_ledger` and the tests."""

from dataclasses import asdict, dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce

from cashback.models import LedgerEntry, Lot, LotMovement, Wallet
from cashback.queries import BREAKDOWNS_OFF_THEIR_ENTRY

ZERO = Decimal(0)


@dataclass(frozen=True)
class Mismatch:
    wallet_id: int
    member_id: int
    card_id: int
    balance: Decimal
    ledger_sum: Decimal
    problem: str

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class LedgerReport:
    wallets_checked: int
    mismatches: list[Mismatch]


def _lots_by_wallet() -> dict[int, tuple[Decimal, Decimal]]:
    """Each wallet's lots added up: (spendable, pending)."""
    return {
        wallet_id: (remaining, pending)
        for wallet_id, remaining, pending in Lot.objects.order_by()
        .values("wallet_id")
        .annotate(remaining=Sum("remaining"), pending=Sum("pending"))
        .values_list("wallet_id", "remaining", "pending")
    }


def _lots_off_their_ledger() -> dict[int, int]:
    """Lots whose numbers are not their source entry's plus their movements: wallet -> a lot."""
    moved = LotMovement.objects.filter(lot=OuterRef("pk")).order_by().values("lot")
    lots = Lot.objects.annotate(
        moved=Coalesce(Subquery(moved.annotate(total=Sum("amount")).values("total")), ZERO),
        moved_pending=Coalesce(
            Subquery(moved.annotate(total=Sum("pending_amount")).values("total")), ZERO
        ),
    ).filter(
        ~Q(remaining=F("source__amount") + F("moved"))
        | ~Q(pending=F("source__pending_amount") + F("moved_pending"))
    )
    return dict(lots.order_by("-pk").values_list("wallet_id", "pk"))


def _breakdowns_off_their_entry() -> dict[int, int]:
    with connection.cursor() as cursor:
        cursor.execute(BREAKDOWNS_OFF_THEIR_ENTRY)
        return dict(cursor.fetchall())


def ledger_verify() -> LedgerReport:
    """Checks every wallet: its spendable and its pending balance each equal the sum of its
    entries' amounts, each entry's `balance_after` and `pending_balance_after` follow from the
    one before it (entries in the order they were posted), its lots add up to both balances,
    each lot is its source entry's credit plus its movements, and each entry's breakdown (an
    earning's contributions, a refund's share of them) adds up to what the entry moved."""
    wallets = {
        wallet.pk: wallet
        for wallet in Wallet.objects.only(
            "pk", "member_id", "card_id", "balance", "pending_balance", "entries_count"
        )
    }
    sums: dict[int, Decimal] = {}
    pending_sums: dict[int, Decimal] = {}
    counts: dict[int, int] = {}
    broken_chain: dict[int, int] = {}
    rows = LedgerEntry.objects.order_by("wallet_id", "id").values_list(
        "wallet_id", "id", "amount", "balance_after", "pending_amount", "pending_balance_after"
    )
    for wallet_id, entry_id, amount, balance_after, pending, pending_after in rows.iterator(
        chunk_size=10_000
    ):
        running = sums.get(wallet_id, ZERO) + amount
        running_pending = pending_sums.get(wallet_id, ZERO) + pending
        followed = running == balance_after and running_pending == pending_after
        if not followed and wallet_id not in broken_chain:
            broken_chain[wallet_id] = entry_id
        sums[wallet_id], pending_sums[wallet_id] = running, running_pending
        counts[wallet_id] = counts.get(wallet_id, 0) + 1
    lots = _lots_by_wallet()
    off_ledger = _lots_off_their_ledger()
    off_breakdown = _breakdowns_off_their_entry()

    mismatches = []
    for wallet in wallets.values():
        total = sums.get(wallet.pk, ZERO)
        problem = None
        if total != wallet.balance:
            problem = "balance differs from the sum of its entries"
        elif pending_sums.get(wallet.pk, ZERO) != wallet.pending_balance:
            problem = "pending_balance differs from the sum of its entries' pending amounts"
        elif wallet.pk in broken_chain:
            problem = f"entry {broken_chain[wallet.pk]} has balances after it that do not follow"
        elif counts.get(wallet.pk, 0) != wallet.entries_count:
            problem = "entries_count differs from the number of its entries"
        elif lots.get(wallet.pk, (ZERO, ZERO)) != (wallet.balance, wallet.pending_balance):
            problem = "its lots do not add up to its balances"
        elif wallet.pk in off_ledger:
            problem = f"lot {off_ledger[wallet.pk]} differs from its entry and its movements"
        elif wallet.pk in off_breakdown:
            problem = f"entry {off_breakdown[wallet.pk]} has a breakdown that does not add up to it"
        if problem:
            mismatches.append(
                Mismatch(
                    wallet.pk, wallet.member_id, wallet.card_id, wallet.balance, total, problem
                )
            )
    return LedgerReport(wallets_checked=len(wallets), mismatches=mismatches)
