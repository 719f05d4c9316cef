"""Property-based tests from the project's own OpenAPI document: with valid credentials, no
generated request gets a 5xx, and every response conforms to the schema (status, content type,
body)."""

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from members.tokens import member_token_issue
from tests.factories import CardFactory, MemberFactory
from tests.helpers import give_balance


@pytest.fixture
def api_schema(db):
    # Like Django's test client: keep the test's connection (and transaction) open across
    # requests, and build the handler now so that it reads the test settings (plain HTTP).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield schemathesis.openapi.from_wsgi("/api/v1/cashback/schema?format=json", WSGIHandler())
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def credentials(merchant):
    # Every operation's examples run within a minute: more than the default rate limit.
    merchant.app.rate_limit_per_minute = 1_000_000
    merchant.app.save()
    card = CardFactory.create(app=merchant.app)
    member = MemberFactory.create(app=merchant.app, phone="+21620123456")
    give_balance(app=merchant.app, card=card, member=member, purchase="500")
    headers = {
        "X-App-Id": merchant.app.app_id,
        "X-Api-Key": merchant.api_key,
        "X-Member-Token": member_token_issue(app=merchant.app, member_id=member.pk).token,
    }
    return headers, {"card_id": card.pk, "member_id": member.pk}


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def aim_at_real_objects(case, ids: dict) -> None:
    """Half the cases name the card and member that exist, so that requests get past lookups
    into the services instead of stopping at 404."""
    if isinstance(case.body, dict):
        for field in ("card_id", "member_id"):
            if field in case.body:
                case.body[field] = ids[field]
        for field in ("email", "phone"):
            case.body.pop(field, None)
        if "purchase_amount" in case.body or "refund_amount" in case.body:
            case.body["member_id"] = ids["member_id"]
        for field in ("purchase_amount", "amount", "refund_amount", "cashback_to_deduct"):
            value = case.body.get(field)
            if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
                case.body[field] = max(round(value, 3), 0.001)
    if case.query:
        for field in ("card_id", "member_id"):
            if field in case.query:
                case.query[field] = ids[field]
    if case.path_parameters and "id" in case.path_parameters:
        case.path_parameters["id"] = ids["card_id"]
    if case.path_parameters and "card_id" in case.path_parameters:
        case.path_parameters["card_id"] = ids["card_id"]


def operations(api_schema):
    return [result.ok() for result in api_schema.get_all_operations()]


def test_the_schema_documents_every_operation(api_schema):
    labels = {operation.label for operation in operations(api_schema)}
    assert labels == {
        "POST /api/v1/cashback/cashback/earn",
        "POST /api/v1/cashback/cashback/redeem",
        "POST /api/v1/cashback/cashback/refund",
        "POST /api/v1/cashback/cashback/reverse",
        "GET /api/v1/cashback/cashback/balance",
        "GET /api/v1/cashback/cashback/history",
        "GET /api/v1/cashback/cards",
        "GET /api/v1/cashback/cards/{id}",
        "POST /api/v1/cashback/auth/otp/request",
        "POST /api/v1/cashback/auth/otp/verify",
        "GET /api/v1/cashback/members",
        "POST /api/v1/cashback/members/pin",
        "GET /api/v1/cashback/webhooks",
        "POST /api/v1/cashback/webhooks",
        "DELETE /api/v1/cashback/webhooks/{id}",
        "POST /api/v1/cashback/webhooks/{id}/rotate-secret",
        "POST /api/v1/cashback/cashback/quote",
        "GET /api/v1/cashback/cards/{card_id}/rules",
        "POST /api/v1/cashback/cards/{card_id}/rules",
        "PATCH /api/v1/cashback/rules/{id}",
        "DELETE /api/v1/cashback/rules/{id}",
        "GET /api/v1/cashback/cards/{card_id}/tiers",
        "POST /api/v1/cashback/cards/{card_id}/tiers",
    }


def test_the_api_honours_its_own_schema(api_schema, credentials):
    """Each operation, with generated bodies and parameters (valid and invalid)."""
    headers, ids = credentials
    for operation in operations(api_schema):

        @given(case=operation.as_strategy(), aimed=st.booleans())
        @settings(
            max_examples=60,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case, aimed):
            if aimed:
                aim_at_real_objects(case, ids)
            case.call_and_validate(headers=headers, checks=CHECKS)

        check()
