from cards.commands import CardCommand
from core.errors import InvalidInput
from programme.serializers import TierInputSerializer, TierSerializer
from programme.services import tier_create


class Command(CardCommand):
    help = "Creates a tier on a card, as the API's POST /cards/{id}/tiers does."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--name", required=True)
        parser.add_argument("--threshold", required=True, help="The qualifying spend.")
        parser.add_argument("--percentage", required=True, help="Replaces the card's.")

    def run(self, **options):
        card = options["card"]
        params = TierInputSerializer(
            data={
                "name": options["name"],
                "threshold": options["threshold"],
                "cashback_percentage": options["percentage"],
            }
        )
        if not params.is_valid():
            raise InvalidInput("The tier is invalid.", details=params.errors)
        tier = tier_create(card=card, **params.validated_data)
        return TierSerializer(tier, context={"currency": card.currency}).data
