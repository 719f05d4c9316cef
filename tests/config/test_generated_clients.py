"""Clients generated from the served OpenAPI document, as an integrator generates them with the
versions pinned in requirements-dev.txt: the `openapi-python-client` client calls every operation
of the document against a live server and parses every answer, documented errors included (an
undocumented status or body raises), and the `datamodel-code-generator` models read every
answer's body, amounts as `Decimal`."""

import datetime
import importlib
import importlib.util
import json
import pkgutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pydantic
import pytest
from django.conf import settings
from django.db import connection

from apps_auth.services import app_create
from bench.harness import gunicorn, production_env
from cards.services import card_create
from core.api.throttling import WINDOW_SECONDS

BIN = Path(sys.executable).parent
SCHEMA = "/api/v1/cashback/schema?format=json"
PACKAGE = "cashback_api_client"
MODELS = "cashback_api_models"


@pytest.fixture(scope="module")
def server(django_db_setup, tmp_path_factory):
    """gunicorn, configured for production, on the test database."""
    folder = tmp_path_factory.mktemp("server")
    params = connection.get_connection_params()
    env = production_env(
        f"postgres://{params['user']}@/{params['dbname']}",
        "generated-clients",
        PGHOST=str(params.get("host") or "127.0.0.1"),
        PGPORT=str(params.get("port") or 5432),
        SECRET_KEY=settings.SECRET_KEY,  # the API key digests and member tokens made here
        REDIS_URL="",
        SECURE_SSL_REDIRECT="false",  # plain HTTP on loopback, no TLS proxy in front
        DJANGO_SETTINGS_MODULE="config.settings",  # not the tests' own
    )
    with gunicorn("config.wsgi", env, workers=1, health="/healthz", log=folder / "server.log") as (
        base,
        _,
    ):
        yield base


@dataclass
class Generated:
    document: dict
    client: ModuleType  # the openapi-python-client package
    models: ModuleType  # the datamodel-code-generator module
    operations: dict[str, ModuleType] = field(default_factory=dict)  # by operationId


@pytest.fixture(scope="module")
def generated(server, tmp_path_factory) -> Iterator[Generated]:
    folder = tmp_path_factory.mktemp("generated")
    document_text = httpx.get(server + SCHEMA, timeout=30).raise_for_status().text
    document_path = folder / "openapi.json"
    document_path.write_text(document_text)
    config = folder / "config.json"
    config.write_text(json.dumps({"post_hooks": []}))  # no formatting: generation alone
    subprocess.run(
        [
            BIN / "openapi-python-client",
            "generate",
            f"--path={document_path}",
            f"--output-path={folder / PACKAGE}",
            "--meta=none",
            f"--config={config}",
            "--fail-on-warning",
        ],
        check=True,
        capture_output=True,
    )
    models_path = folder / "models.py"
    subprocess.run(
        [
            BIN / "datamodel-codegen",
            f"--input={document_path}",
            "--input-file-type=openapi",
            "--output-model-type=pydantic_v2.BaseModel",
            f"--output={models_path}",
            "--target-python-version=3.11",
            "--strict-nullable",  # a required field that may be null is `X | None`
            "--extra-fields=forbid",  # a field the document does not list fails
            "--formatters=builtin",
        ],
        check=True,
        capture_output=True,
    )
    sys.path.insert(0, str(folder))
    try:
        client = importlib.import_module(PACKAGE)
        spec = importlib.util.spec_from_file_location(MODELS, models_path)
        assert spec is not None
        assert spec.loader is not None
        models = sys.modules[MODELS] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(models)
        api = importlib.import_module(f"{PACKAGE}.api")
        operations = {
            info.name.rsplit(".", 1)[1]: importlib.import_module(info.name)
            for info in pkgutil.walk_packages(api.__path__, f"{PACKAGE}.api.")
            if not info.ispkg
        }
        yield Generated(exact(document_text), client, models, operations)
    finally:
        sys.path.remove(str(folder))
        for name in [name for name in sys.modules if name.split(".")[0] in (PACKAGE, MODELS)]:
            del sys.modules[name]


def document_operations(document: dict) -> dict[str, dict]:
    return {
        operation["operationId"]: operation
        for path in document["paths"].values()
        for operation in path.values()
    }


def component_names(schema: dict) -> list[str]:
    """The components a response or body schema names: one, or each of a oneOf."""
    refs = schema.get("oneOf", [schema])
    return [ref["$ref"].rsplit("/", 1)[1] for ref in refs]


def read_with_models(models: ModuleType, schema: dict, value: Any) -> pydantic.BaseModel:
    """The one model of `schema` that reads `value` (exactly one of a oneOf)."""
    read = []
    for name in component_names(schema):
        try:
            read.append(getattr(models, name).model_validate(value))
        except pydantic.ValidationError:
            continue
    assert len(read) == 1, (schema, value, read)
    return read[0]


def exact(body: str | bytes) -> Any:
    # JSON numbers as exact decimals: pydantic's own JSON parsing reads them as floats first.
    return json.loads(body, parse_float=Decimal)


class Api:
    """Calls operations through the generated client, checks each answer against the document
    with both generators' code, and remembers which operations it called."""

    def __init__(self, generated: Generated, base: str, app_id: str, api_key: str):
        self.generated = generated
        self.base = base
        self.headers = {"X-App-Id": app_id, "X-Api-Key": api_key}
        self.document_operations = document_operations(generated.document)
        self.called: set[str] = set()

    def client(self, **headers: str):
        return self.generated.client.Client(
            base_url=self.base,
            headers={**self.headers, **headers},
            raise_on_unexpected_status=True,
            timeout=httpx.Timeout(30),
        )

    def member_client(self, token: str, *, header: str = "Authorization"):
        """A client carrying a member token: as `Authorization: Bearer` (the generator's
        default), or in `X-Member-Token`."""
        prefix = "Bearer" if header == "Authorization" else ""
        return self.generated.client.AuthenticatedClient(
            base_url=self.base,
            token=token,
            prefix=prefix,
            auth_header_name=header,
            headers=dict(self.headers),  # the client writes its token header into this dict
            raise_on_unexpected_status=True,
            timeout=httpx.Timeout(30),
        )

    def model(self, name: str):
        return getattr(self.generated.client.models, name)

    def call(self, operation_id: str, status: int = 200, *, client=None, code=None, **kwargs):
        """The answer, parsed by the generated client and read by the models; `code` is the
        error code expected."""
        self.called.add(operation_id)
        response = self.generated.operations[operation_id].sync_detailed(
            client=client or self.client(), **kwargs
        )
        assert response.status_code == status, (operation_id, response.content)
        assert response.headers.get("X-Request-Id")
        documented = self.document_operations[operation_id]["responses"][str(status)]
        if "Retry-After" in documented.get("headers", {}):
            assert response.headers["Retry-After"].isdigit()
        read = read_with_models(
            self.generated.models,
            documented["content"]["application/json"]["schema"],
            exact(response.content),
        )
        parsed = response.parsed
        assert type(parsed).__name__ == type(read).__name__
        if status == 200:
            assert parsed.success is True
        else:
            assert parsed.success is False
            assert parsed.error.code.value == code, response.content
        return response, read


@pytest.mark.django_db(transaction=True)
def test_the_generated_client_calls_every_operation_and_parses_every_answer(server, generated):
    app, issued = app_create(
        name="Till",
        scopes=["cashback_read", "cashback_write", "card_read", "card_write", "webhooks"],
        rate_limit_per_minute=100_000,
    )
    card = card_create(
        app=app,
        name="Premium",
        cashback_percentage=Decimal(5),
        cashback_min_amount=Decimal(10),
        cashback_max_amount=Decimal(1000),
        allows_pin_redemption=True,
    )
    api = Api(generated, server, app.app_id, issued.raw_key)
    M = api.model

    # Cards
    _, cards = api.call("list_cards")
    assert [c.id for c in cards.data.cards] == [card.pk]
    assert cards.data.cards[0].cashback_config.cashback_min_amount == Decimal("10.000")
    api.call("get_card", id=card.pk)
    api.call("get_card", 404, code="not_found", id=card.pk + 1000)

    # Earn: by phone (a new member), by email, by id; amounts sent as strings stay exact.
    earn = M("EarnRequest")(
        card_id=card.pk,
        phone="+21620123456",
        member_name="Amira",
        purchase_amount=str(Decimal("10.100") * 3),
        reference="ORDER-1",
    )
    response, earned = api.call("earn_cashback", body=earn, idempotency_key="earn-1")
    assert earned.data.purchase_amount == Decimal("30.300")
    assert str(earned.data.cashback_earned) == "1.515"
    assert earned.data.member_created is True
    member_id = earned.data.member_id
    response, replayed = api.call("earn_cashback", body=earn, idempotency_key="earn-1")
    assert response.headers["Idempotent-Replayed"] == "true"
    assert replayed.data.transaction_id == earned.data.transaction_id
    other = M("EarnRequest")(card_id=card.pk, member_id=member_id, purchase_amount=50)
    api.call(
        "earn_cashback", 409, code="idempotency_key_reused", body=other, idempotency_key="earn-1"
    )
    other.reference = "ORDER-1"
    _, duplicate = api.call("earn_cashback", 409, code="duplicate_reference", body=other)
    assert duplicate.error.details.transaction_id == earned.data.transaction_id
    other.reference = "ORDER-2"
    api.call("earn_cashback", body=other)
    by_email = M("EarnRequest")(card_id=card.pk, email="bob@example.com", purchase_amount="20")
    _, bob = api.call("earn_cashback", body=by_email)
    assert bob.data.member_created is True
    by_both = M("EarnRequest")(
        card_id=card.pk, email="bob@example.com", phone="20123456", purchase_amount="20"
    )
    _, conflict = api.call("earn_cashback", 409, code="member_conflict", body=by_both)
    assert conflict.error.details.model_dump() == {
        "email_member_id": bob.data.member_id,
        "phone_member_id": member_id,
    }
    small = M("EarnRequest")(card_id=card.pk, member_id=member_id, purchase_amount="5")
    api.call("earn_cashback", 422, code="below_minimum_purchase", body=small)
    small.purchase_amount = "10.0001"
    api.call("earn_cashback", 400, code="validation_error", body=small)

    # Sign-in by one-time code, PIN
    _, challenge = api.call(
        "request_otp", body=M("OtpRequestRequest")(phone="20 123 456", channel=M("ChannelEnum").SMS)
    )
    code = challenge.data.test_code  # a test-mode app's
    wrong_code = "000000" if code != "000000" else "111111"
    wrong = M("OtpVerifyRequest")(challenge_id=challenge.data.challenge_id, code=wrong_code)
    api.call("verify_otp", 400, code="invalid_otp", body=wrong)
    _, verified = api.call(
        "verify_otp",
        body=M("OtpVerifyRequest")(challenge_id=challenge.data.challenge_id, code=code),
    )
    token = verified.data.member_token
    member = api.member_client(token)  # Authorization: Bearer
    api.call("set_pin", client=member, body=M("PinRequest")(pin="1234"))
    _, found = api.call("find_member", phone="+21620123456")
    assert found.data.member_id == member_id
    api.call("find_member", 404, code="not_found", email="nobody@example.com")

    # Redeem, reverse, refund
    redeem = M("RedeemRequest")(card_id=card.pk, amount="1.000", pin="1234")
    _, redeemed = api.call("redeem_cashback", client=member, body=redeem)
    assert redeemed.data.amount_redeemed == Decimal("1.000")
    in_header = api.member_client(token, header="X-Member-Token")
    api.call(
        "redeem_cashback", client=in_header, body=M("RedeemRequest")(card_id=card.pk, amount=1)
    )
    too_much = M("RedeemRequest")(card_id=card.pk, amount="1000")
    api.call("redeem_cashback", 422, code="insufficient_balance", client=member, body=too_much)
    _, refused = api.call(
        "redeem_cashback",
        401,
        code="authentication_failed",
        client=api.member_client("not-a-token", header="X-Member-Token"),
        body=redeem,
    )
    assert refused.error.details.reason.value == "member_token_invalid"
    reverse = M("ReverseRequest")(card_id=card.pk, transaction_id=redeemed.data.transaction_id)
    _, reversed_ = api.call("reverse_redemption", body=reverse)
    assert reversed_.data.amount == Decimal("1.000")
    api.call("reverse_redemption", 409, code="already_reversed", body=reverse)
    refund = M("RefundRequest")(card_id=card.pk, member_id=member_id, refund_amount="10.100")
    _, refunded = api.call("refund_cashback", body=refund)
    assert refunded.data.cashback_deducted == Decimal("0.505")

    # Balance and history
    _, balance = api.call("get_balance", card_id=card.pk, phone="+21620123456")
    assert balance.data.member_id == member_id
    # 1.515 + 2.500 earned, 1.000 twice redeemed, one given back, 0.505 refunded
    assert str(balance.data.cashback_balance) == "2.510"
    api.call("get_balance", 404, code="not_found", card_id=card.pk, member_id=member_id + 1000)
    _, history = api.call("get_history", card_id=card.pk, member_id=member_id)
    assert history.data.pagination.total == len(history.data.transactions) == 6
    _, bobs = api.call("get_history", card_id=card.pk, email="BOB@example.com")
    assert [t.amount for t in bobs.data.transactions] == [Decimal("1.000")]
    _, earnings = api.call(
        "get_history",
        card_id=card.pk,
        member_id=member_id,
        type_=generated.operations["get_history"].GetHistoryType.EARNING,
        created_after=datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC),
        created_before=datetime.datetime(2100, 1, 1, tzinfo=datetime.UTC),
        limit=1,
        offset=1,
    )
    assert [t.type.value for t in earnings.data.transactions] == ["earning"]
    assert earnings.data.pagination.has_more is False

    # The programme: a tier, a rule on a category, a quote and an earn with a basket, a refund
    # of one line; the rule changed and deactivated.
    tier = M("TierInputRequest")(name="Gold", threshold="0", cashback_percentage="6")
    _, gold = api.call("create_card_tier", card_id=card.pk, body=tier, idempotency_key="tier-1")
    assert gold.data.threshold == Decimal("0.000")
    _, tiers = api.call("list_card_tiers", card_id=card.pk)
    assert [t.name for t in tiers.data.tiers] == ["Gold"]
    rule = M("RuleInputRequest")(
        name="Coffee",
        kind=M("KindEnum").BONUS_PERCENTAGE,
        percentage="10",
        categories=["coffee"],
        hours=M("HoursRequest").from_dict({"from": "00:00", "to": "23:59"}),
        budget="100",
    )
    _, created = api.call("create_card_rule", card_id=card.pk, body=rule)
    rule_id = created.data.id
    lines = [
        M("LineRequest")(sku="COF", category="coffee", amount="30"),
        M("LineRequest")(sku="MUG", amount="20"),
    ]
    basket = {"card_id": card.pk, "member_id": bob.data.member_id, "purchase_amount": "50"}
    _, quote = api.call("quote_cashback", body=M("QuoteRequest")(**basket, lines=lines))
    _, with_lines = api.call("earn_cashback", body=M("EarnRequest")(**basket, lines=lines))
    assert quote.data.cashback == with_lines.data.cashback_earned
    # Gold, at 0, is every member's: 6 % replaces the card's 5 %.
    assert [p.amount for p in with_lines.data.breakdown] == [Decimal("3.000"), Decimal("3.000")]
    line_refund = M("RefundRequest")(
        card_id=card.pk,
        member_id=bob.data.member_id,
        original_transaction_id=with_lines.data.transaction_id,
        lines=[M("RefundLineRequest")(sku="COF", amount="30")],
    )
    _, line_refunded = api.call("refund_cashback", body=line_refund)
    assert line_refunded.data.cashback_deducted == Decimal("4.800")  # 30/50 of 3, and 3
    _, rules = api.call("list_card_rules", card_id=card.pk)
    assert rules.data.rules[0].budget_remaining == Decimal("100.000")
    api.call("update_rule", id=rule_id, body=M("PatchedRuleInputRequest")(priority=5))
    _, off = api.call("deactivate_rule", id=rule_id)
    assert off.data.active is False
    api.call("deactivate_rule", 404, code="not_found", id=rule_id + 1000)

    # Webhook endpoints
    create = M("WebhookEndpointCreateRequest")(url="http://127.0.0.1:9/hooks")
    _, endpoint = api.call("create_webhook", body=create, idempotency_key="hook-1")
    api.call("list_webhooks")
    api.call("rotate_webhook_secret", id=endpoint.data.id)
    api.call("delete_webhook", id=endpoint.data.id)
    api.call("delete_webhook", 404, code="not_found", id=endpoint.data.id)

    # Credentials, scope and rate limit of other apps
    _, refused = api.call(
        "list_cards",
        401,
        code="authentication_failed",
        client=api.client(**{"X-Api-Key": "test_wrong"}),
    )
    assert refused.error.details.reason.value == "credentials_invalid"
    reader, reader_key = app_create(name="Reader", scopes=["card_read"], rate_limit_per_minute=1)
    as_reader = api.client(**{"X-App-Id": reader.app_id, "X-Api-Key": reader_key.raw_key})
    api.call("list_webhooks", 403, code="permission_denied", client=as_reader)
    if time.time() % WINDOW_SECONDS > WINDOW_SECONDS - 3:  # both calls in one window
        time.sleep(3)
    api.call("list_cards", client=as_reader)
    api.call("list_cards", 429, code="throttled", client=as_reader)

    # Wrong PINs lock the member's redeems
    wrong_pin = M("RedeemRequest")(card_id=card.pk, amount="1", pin="9999")
    for _ in range(5):
        api.call("redeem_cashback", 403, code="invalid_pin", client=member, body=wrong_pin)
    without_pin = M("RedeemRequest")(card_id=card.pk, amount="1")
    _, locked = api.call("redeem_cashback", 423, code="pin_locked", client=member, body=without_pin)
    assert locked.error.details.locked_until > datetime.datetime.now(datetime.UTC)

    assert api.called == set(api.document_operations)


def test_every_example_in_the_document_is_read_by_the_generated_models(generated):
    for operation_id, operation in document_operations(generated.document).items():
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            for example in body["examples"].values():
                read_with_models(generated.models, body["schema"], example["value"])
        for status, response in operation["responses"].items():
            content = response["content"]["application/json"]
            assert content.get("examples"), (operation_id, status)
            for example in content["examples"].values():
                read_with_models(generated.models, content["schema"], example["value"])
