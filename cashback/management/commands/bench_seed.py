import sys
import time
from datetime import timedelta
from decimal import Decimal

from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from apps_auth.models import App
from apps_auth.services import app_create
from cards.models import Card
from cards.services import card_create
from cashback.models import LedgerEntry, Lot, Wallet
from core.commands import OperationsCommand
from members.models import Member

STEP = Decimal("0.050")  # each seeded entry credits this much cashback
COLUMNS = (
    "app_id",
    "wallet_id",
    "card_id",
    "entry_type",
    "event",
    "amount",
    "balance_after",
    "pending_amount",
    "pending_balance_after",
    "purchase_amount",
    "cashback_percentage",
    "unrecovered_amount",
    "metadata",
    "request_fingerprint",
    "created_at",
    "sequence",
    "type_sequence",
)

_LOTS_SQL = (
    f"INSERT INTO {Lot._meta.db_table} (app_id, wallet_id, source_id, pending, remaining, "  # noqa: S608
    f"available_at, created_at) SELECT app_id, wallet_id, id, 0, amount, created_at, created_at "
    f"FROM {LedgerEntry._meta.db_table} WHERE wallet_id = %(wallet)s"
)


def members_with_wallets(*, app: App, card: Card, count: int) -> list[Wallet]:
    """`count` new members of the app (`seedN@example.com`, numbered after the app's members),
    each with an empty wallet on the card, bulk-inserted."""
    first = Member.objects.filter(app=app).count()
    members = Member.objects.bulk_create(
        Member(app=app, email=f"seed{first + i}@example.com") for i in range(count)
    )
    return Wallet.objects.bulk_create(
        Wallet(app=app, card=card, member=member) for member in members
    )


class Command(OperationsCommand):
    help = (
        "Loads a large ledger for benchmarks (PostgreSQL, COPY): --hot entries on one wallet and "
        "--total in all, spread over wallets of --per-wallet entries. Balances stay consistent."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--hot", type=int, default=1_000_000)
        parser.add_argument("--total", type=int, default=10_000_000)
        parser.add_argument("--per-wallet", type=int, default=1_000)
        parser.add_argument("--app", help="An existing app id; by default a new 'Bench seed' app.")

    def run(self, *, hot, total, per_wallet, app, **options):
        if hot > total or per_wallet < 1:
            raise CommandError("--hot must be at most --total, and --per-wallet at least 1.")
        target = App.objects.get(app_id=app) if app else app_create(
            name="Bench seed", scopes=["cashback_read", "cashback_write", "card_read"],
            rate_limit_per_minute=2_000_000_000,
        )[0]  # fmt: skip
        card = Card.objects.filter(app=target).first() or card_create(
            app=target, name="Seed card", cashback_percentage=Decimal(5)
        )
        sizes = [hot] + [per_wallet] * ((total - hot) // per_wallet)
        if (rest := (total - hot) % per_wallet) > 0:
            sizes.append(rest)
        wallets = members_with_wallets(app=target, card=card, count=len(sizes))
        started, written = time.monotonic(), 0
        start_at = timezone.now() - timedelta(days=365)
        with connection.cursor() as cursor:
            copy_sql = f"COPY {LedgerEntry._meta.db_table} ({', '.join(COLUMNS)}) FROM STDIN"
            for wallet, size in zip(wallets, sizes, strict=True):
                with transaction.atomic():
                    with cursor.copy(copy_sql) as copy:
                        balance = Decimal(0)
                        for i in range(size):
                            balance += STEP
                            copy.write_row(
                                (
                                    target.pk, wallet.pk, card.pk, "earning", "cashback_earned",
                                    STEP, balance, 0, 0, 1, 5, 0, "{}", "",
                                    start_at + timedelta(seconds=i), i + 1, i + 1,
                                )
                            )  # fmt: skip
                    # Each earning's lot, spendable since its entry and never expiring.
                    cursor.execute(_LOTS_SQL, {"wallet": wallet.pk})
                Wallet.objects.filter(pk=wallet.pk).update(balance=balance, entries_count=size)
                written += size
                self._progress(written, total, started)
            # Visibility map and statistics, as autovacuum would leave them on a live database.
            cursor.execute(f"VACUUM (ANALYZE) {LedgerEntry._meta.db_table}")
            cursor.execute(f"VACUUM (ANALYZE) {Lot._meta.db_table}")
            cursor.execute(f"ANALYZE {Wallet._meta.db_table}")
            # The load's dirty pages written now, not by a checkpoint in the middle of a
            # measurement (needs a superuser or pg_checkpoint; skipped without).
            try:
                with transaction.atomic():
                    cursor.execute("CHECKPOINT")
            except DatabaseError:
                pass
        sys.stderr.write("\n")
        return {
            "app_id": target.app_id,
            "card_id": card.pk,
            "hot_member_id": wallets[0].member_id,
            "entries": written,
            "wallets": len(wallets),
            "seconds": round(time.monotonic() - started, 1),
        }

    @staticmethod
    def _progress(done, total, started):
        width = 40
        filled = int(width * done / total)
        rate = done / max(time.monotonic() - started, 1e-9)
        sys.stderr.write(
            f"\r[{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,} entries, {rate:,.0f}/s"
        )
        sys.stderr.flush()
