from decimal import Decimal

import factory

from apps_auth.models import App, Scope
from cards.models import Card
from members.models import Member
from programme.models import EarningRule, Tier


class AppFactory(factory.django.DjangoModelFactory[App]):
    class Meta:
        model = App

    name = factory.Sequence(lambda n: f"Merchant {n}")
    mode = "test"
    scopes = factory.LazyFunction(lambda: list(Scope.values))


class CardFactory(factory.django.DjangoModelFactory[Card]):
    class Meta:
        model = Card

    app = factory.SubFactory(AppFactory)
    name = factory.Sequence(lambda n: f"Card {n}")
    unique_identifier = factory.Sequence(lambda n: f"CASH-{n:03d}")
    description = "5% cashback on all purchases"
    cashback_percentage = Decimal(5)
    cashback_min_amount = Decimal(10)
    cashback_max_amount = Decimal(1000)
    allows_pin_redemption = True
    currency = "TND"


class MemberFactory(factory.django.DjangoModelFactory[Member]):
    class Meta:
        model = Member

    app = factory.SubFactory(AppFactory)
    name = factory.Faker("name")
    email = factory.Sequence(lambda n: f"member{n}@example.com")


class RuleFactory(factory.django.DjangoModelFactory[EarningRule]):
    class Meta:
        model = EarningRule

    card = factory.SubFactory(CardFactory)
    app = factory.SelfAttribute("card.app")
    name = factory.Sequence(lambda n: f"Rule {n}")
    kind = "bonus_percentage"
    percentage = Decimal(10)


class TierFactory(factory.django.DjangoModelFactory[Tier]):
    class Meta:
        model = Tier

    card = factory.SubFactory(CardFactory)
    app = factory.SelfAttribute("card.app")
    name = factory.Sequence(lambda n: f"Tier {n}")
    threshold = Decimal(1000)
    cashback_percentage = Decimal(7)
