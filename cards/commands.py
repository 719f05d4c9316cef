from django.core.management.base import CommandError

from cards.models import Card
from core.commands import OperationsCommand


class CardCommand(OperationsCommand):
    """An operations command on one card, named by `--card CARD_ID`; `run` receives the `Card`
    (as `apps_auth.commands.AppCommand` does an app)."""

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--card", required=True, type=int, help="The card's id.")

    def handle(self, *args, **options):
        card = Card.objects.filter(pk=options["card"]).first()
        if card is None:
            raise CommandError(f"No card with id {options['card']}.")
        return super().handle(*args, **{**options, "card": card})
