from cashback.services import cashback_expire_due
from core import money
from core.commands import OperationsCommand, instant_arg


class Command(OperationsCommand):
    help = (
        "Writes off the cashback expired by --as-of (default now) and sends the expiry "
        "warnings due: what the worker does."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--as-of", type=instant_arg, help="ISO 8601; default now.")

    def run(self, **options):
        result = cashback_expire_due(as_of=options["as_of"])
        return {
            "expired": result.expired,
            "amount": money.plain(result.amount),
            "warned": result.warned,
        }
