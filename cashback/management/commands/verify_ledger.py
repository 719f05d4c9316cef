import sys

from cashback.ledger_check import ledger_verify
from core.commands import OperationsCommand


class Command(OperationsCommand):
    help = "Checks every wallet against its ledger entries; exits 1 naming the offenders."

    def handle(self, *args, **options):
        super().handle(*args, **options)
        if self.report.mismatches:
            sys.exit(1)

    def run(self, **options):
        self.report = ledger_verify()
        return {
            "wallets_checked": self.report.wallets_checked,
            "mismatches": [mismatch.as_dict() for mismatch in self.report.mismatches],
        }

    def describe(self, result):
        lines = [f"Wallets checked: {result['wallets_checked']}"]
        if not result["mismatches"]:
            lines.append("No mismatch: every balance equals its ledger.")
        for m in result["mismatches"]:
            lines.append(
                f"MISMATCH wallet {m['wallet_id']} (member {m['member_id']}, card {m['card_id']}): "
                f"balance {m['balance']}, ledger sum {m['ledger_sum']}: {m['problem']}"
            )
        return "\n".join(lines)
