"""A stateful property test: earn, redeem, refund and replays through the API, against a model."""

import itertools
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from rest_framework.test import APIClient

from apps_auth.services import api_key_create
from cashback.models import LedgerEntry, Wallet
from members.tokens import member_token_issue
from tests.factories import AppFactory, CardFactory, MemberFactory

API = "/api/v1/cashback/cashback"
PERCENT = Decimal("3.5")
MILLIME = Decimal("0.001")
keys = itertools.count()
amounts = st.decimals(min_value=MILLIME, max_value=Decimal(2000), places=3)


def expected_cashback(amount: Decimal) -> Decimal:
    return (amount * PERCENT / 100).quantize(MILLIME, rounding=ROUND_HALF_UP)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        app = AppFactory.create()
        self.card = CardFactory.create(
            app=app, cashback_percentage=PERCENT, cashback_min_amount=0, cashback_max_amount=None
        )
        self.member = MemberFactory.create(app=app)
        self.client = APIClient(
            headers={"X-App-Id": app.app_id, "X-Api-Key": api_key_create(app=app).raw_key}
        )
        self.client.default_format = "json"
        self.token = member_token_issue(app=app, member_id=self.member.pk).token
        self.balance = Decimal(0)
        # Every request sent: path, body, headers, key, and the response it got.
        self.sent: list[tuple[str, dict, dict, str, int, bytes]] = []

    def post(self, path: str, body: dict, **headers):
        key = f"key-{next(keys)}"
        response = self.client.post(
            f"{API}/{path}", body, headers={"Idempotency-Key": key, **headers}
        )
        self.sent.append((path, body, headers, key, response.status_code, response.content))
        return response

    @rule(amount=amounts)
    def earn(self, amount):
        response = self.post(
            "earn",
            {"card_id": self.card.pk, "member_id": self.member.pk, "purchase_amount": amount},
        )
        cashback = expected_cashback(amount)
        if cashback == 0:
            assert response.status_code == 422
            return
        assert response.status_code == 200, response.content
        self.balance += cashback

    @rule(amount=amounts)
    def redeem(self, amount):
        response = self.post(
            "redeem", {"card_id": self.card.pk, "amount": amount}, **{"X-Member-Token": self.token}
        )
        if amount > self.balance:
            assert response.status_code == 422
            assert response.json()["error"]["code"] == "insufficient_balance"
            return
        assert response.status_code == 200, response.content
        self.balance -= amount

    @rule(amount=amounts)
    def refund(self, amount):
        response = self.post(
            "refund",
            {"card_id": self.card.pk, "member_id": self.member.pk, "refund_amount": amount},
        )
        assert response.status_code == 200, response.content
        taken = min(expected_cashback(amount), self.balance)
        assert Decimal(str(response.json()["data"]["cashback_deducted"])) == taken
        self.balance -= taken

    @precondition(lambda self: self.sent)
    @rule(data=st.data())
    def replay(self, data):
        path, body, headers, key, status, content = data.draw(st.sampled_from(self.sent))
        response = self.client.post(
            f"{API}/{path}", body, headers={"Idempotency-Key": key, **headers}
        )
        assert response.status_code == status
        assert response["Idempotent-Replayed"] == "true"
        assert response.content == content

    @invariant()
    def balances_match_the_model_and_the_ledger(self):
        wallet = Wallet.objects.filter(member=self.member, card=self.card).first()
        stored = wallet.balance if wallet else Decimal(0)
        assert stored == self.balance >= 0
        entries = LedgerEntry.objects.filter(wallet=wallet) if wallet else []
        assert sum((e.amount for e in entries), Decimal(0)) == stored


@pytest.mark.django_db
def test_ledger_matches_a_model_of_balances_under_any_sequence():
    run_state_machine_as_test(
        LedgerMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
