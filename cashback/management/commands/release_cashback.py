from cashback.services import cashback_release_due
from core import money
from core.commands import OperationsCommand, instant_arg


class Command(OperationsCommand):
    help = "Releases the held cashback due by --as-of (default now): what the worker does."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--as-of", type=instant_arg, help="ISO 8601; default now.")

    def run(self, **options):
        result = cashback_release_due(as_of=options["as_of"])
        return {"released": result.released, "amount": money.plain(result.amount)}
