"""Proof that balances equal their ledgers: used by `verify_ledger` and the tests."""

from dataclasses import asdict, dataclass
from decimal import Decimal

from cashback.models import LedgerEntry, Wallet


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


def ledger_verify() -> LedgerReport:
    """Checks every wallet: its balance equals the sum of its entries, and each entry's
    `balance_after` is the one before it plus its amount (entries in the order they were posted)."""
    wallets = {
        wallet.pk: wallet
        for wallet in Wallet.objects.only("pk", "member_id", "card_id", "balance", "entries_count")
    }
    sums: dict[int, Decimal] = {}
    counts: dict[int, int] = {}
    broken_chain: dict[int, int] = {}
    rows = LedgerEntry.objects.order_by("wallet_id", "id").values_list(
        "wallet_id", "id", "amount", "balance_after"
    )
    for wallet_id, entry_id, amount, balance_after in rows.iterator(chunk_size=10_000):
        running = sums.get(wallet_id, Decimal(0)) + amount
        if running != balance_after and wallet_id not in broken_chain:
            broken_chain[wallet_id] = entry_id
        sums[wallet_id] = running
        counts[wallet_id] = counts.get(wallet_id, 0) + 1

    mismatches = []
    for wallet in wallets.values():
        total = sums.get(wallet.pk, Decimal(0))
        problem = None
        if total != wallet.balance:
            problem = "balance differs from the sum of its entries"
        elif wallet.pk in broken_chain:
            problem = f"entry {broken_chain[wallet.pk]} has a balance_after that does not follow"
        elif counts.get(wallet.pk, 0) != wallet.entries_count:
            problem = "entries_count differs from the number of its entries"
        if problem:
            mismatches.append(
                Mismatch(
                    wallet.pk, wallet.member_id, wallet.card_id, wallet.balance, total, problem
                )
            )
    return LedgerReport(wallets_checked=len(wallets), mismatches=mismatches)
