import argparse
from decimal import Decimal, InvalidOperation

from apps_auth.commands import AppCommand
from cards.serializers import CardSerializer
from cards.services import card_create


def decimal_arg(value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number.") from None
    if not number.is_finite():
        raise argparse.ArgumentTypeError(f"{value!r} is not a number.")
    return number


class Command(AppCommand):
    help = "Creates a cashback card for an app."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--name", required=True)
        parser.add_argument("--percentage", required=True, type=decimal_arg)
        parser.add_argument("--identifier", help="Your card code, e.g. CASH-001.")
        parser.add_argument("--description", default="")
        parser.add_argument("--min-amount", type=decimal_arg, default=Decimal(0))
        parser.add_argument("--max-amount", type=decimal_arg, help="No value: no cap.")
        parser.add_argument("--allow-pin-redemption", action="store_true")
        parser.add_argument(
            "--holding-days", type=int, default=0, help="Days an earning stays pending."
        )
        parser.add_argument(
            "--expiry-days", type=int, help="Days cashback lasts once spendable; none: forever."
        )
        parser.add_argument(
            "--expiry-policy", choices=["rolling", "end_of_month", "fixed_date"], default="rolling"
        )
        parser.add_argument("--expiry-date", help="MM-DD, with --expiry-policy fixed_date.")
        parser.add_argument(
            "--inactivity-days", type=int, help="Days without an earning before cashback expires."
        )
        parser.add_argument("--time-zone", help="IANA name; the default is a setting.")
        parser.add_argument("--tier-period-days", type=int, default=365)
        parser.add_argument("--tier-retention-days", type=int, default=365)
        parser.add_argument("--currency", help="ISO 4217 code; the default is a setting.")
        parser.add_argument("--inactive", action="store_true")

    def run(self, **options):
        card = card_create(
            app=options["app"],
            name=options["name"],
            cashback_percentage=options["percentage"],
            unique_identifier=options["identifier"],
            description=options["description"],
            cashback_min_amount=options["min_amount"],
            cashback_max_amount=options["max_amount"],
            allows_pin_redemption=options["allow_pin_redemption"],
            cashback_holding_days=options["holding_days"],
            cashback_expiry_days=options["expiry_days"],
            cashback_expiry_policy=options["expiry_policy"],
            cashback_expiry_date=options["expiry_date"],
            cashback_inactivity_days=options["inactivity_days"],
            tier_period_days=options["tier_period_days"],
            tier_retention_days=options["tier_retention_days"],
            time_zone=options["time_zone"],
            currency=options["currency"],
            is_active=not options["inactive"],
        )
        return CardSerializer(card).data
