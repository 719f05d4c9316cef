from decimal import Decimal

import factory

from apps_auth.models import App, Scope
from cards.models import Card
from members.models import Member


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
