from cards.commands import CardCommand
from core.errors import InvalidInput
from programme.serializers import RuleInputSerializer, RuleSerializer
from programme.services import rule_create


def _listed(value: str | None) -> list[str] | None:
    return None if value is None else [part.strip() for part in value.split(",") if part.strip()]


class Command(CardCommand):
    help = "Creates an earning rule on a card, as the API's POST /cards/{id}/rules does."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--name", required=True)
        parser.add_argument(
            "--kind", required=True, choices=["multiplier", "bonus_percentage", "fixed_bonus"]
        )
        parser.add_argument("--factor", help="multiplier: 1 < f ≤ 10.")
        parser.add_argument("--percentage", help="bonus_percentage: 0 < p ≤ 100.")
        parser.add_argument("--amount", help="fixed_bonus: the bonus.")
        parser.add_argument("--priority", type=int, help="Lower applies first (default 100).")
        parser.add_argument("--not-stackable", action="store_true")
        parser.add_argument("--starts-at", help="ISO 8601.")
        parser.add_argument("--ends-at", help="ISO 8601.")
        parser.add_argument("--days", help="ISO days of the week, e.g. 6,7.")
        parser.add_argument("--hours", help="HH:MM-HH:MM in the card's zone, may wrap midnight.")
        parser.add_argument("--categories", help="a,b")
        parser.add_argument("--skus", help="x,y")
        parser.add_argument("--min-purchase")
        parser.add_argument("--tiers", help="Tier names, e.g. gold.")
        parser.add_argument("--first-purchase-only", action="store_true")
        parser.add_argument("--max-per-transaction")
        parser.add_argument("--max-uses-per-member", type=int)
        parser.add_argument("--per", choices=["day", "week", "month", "year", "ever"])
        parser.add_argument("--budget")

    def run(self, **options):
        card = options["card"]
        body: dict = {"name": options["name"], "kind": options["kind"]}
        for name in (
            "factor", "percentage", "amount", "priority", "starts_at", "ends_at",
            "min_purchase", "max_per_transaction", "max_uses_per_member", "per", "budget",
        ):  # fmt: skip
            if options[name] is not None:
                body[name] = options[name]
        if options["not_stackable"]:
            body["stackable"] = False
        if options["first_purchase_only"]:
            body["first_purchase_only"] = True
        for name, option in (("days_of_week", "days"), ("categories", "categories")):
            if options[option] is not None:
                body[name] = _listed(options[option])
        for name in ("skus", "tiers"):
            if options[name] is not None:
                body[name] = _listed(options[name])
        if options["hours"] is not None:
            start, _, end = options["hours"].partition("-")
            body["hours"] = {"from": start.strip(), "to": end.strip()}
        params = RuleInputSerializer(data=body)
        if not params.is_valid():
            raise InvalidInput("The rule is invalid.", details=params.errors)
        rule = rule_create(card=card, fields=dict(params.validated_data))
        return RuleSerializer(rule, context={"currency": card.currency}).data
