"""What answers without credentials is cheap and throttled: the OpenAPI document is built once
per process, not per request, and the document and the docs page answer at most
CASHBACK_ANONYMOUS_RATE_LIMIT requests per client address a minute, counted together in the
shared cache; then `429 throttled` with Retry-After. Health checks are never throttled."""

import json
import time
import uuid

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.helpers import error

API = "/api/v1/cashback"
SCHEMA, DOCS = f"{API}/schema", f"{API}/docs"


def an_address() -> str:
    """A client no other test is (an IPv6 client counts as its /64): counters in Redis outlive a
    test's transaction."""
    return f"2001:db8:{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}::1"


@pytest.fixture
def one_minute():
    """The tests count within one clock minute: start one that has time left."""
    left = 60 - time.time() % 60
    if left < 10:
        time.sleep(left + 0.1)


def test_the_openapi_document_is_built_once_per_process(client, db, monkeypatch):
    built = []
    get_schema = SchemaGenerator.get_schema

    def counted(self, *args, **kwargs):
        built.append(1)
        return get_schema(self, *args, **kwargs)

    monkeypatch.setattr(SchemaGenerator, "get_schema", counted)
    answers = [
        client.get(SCHEMA),
        client.get(SCHEMA, {"format": "json"}),
        client.get(SCHEMA, headers={"Accept": "application/json"}),
        client.get(SCHEMA),
        client.get(SCHEMA, {"format": "json"}),
    ]
    assert len(built) <= 1  # 0 when an earlier test of this process built it
    built.clear()
    assert [a.status_code for a in answers] == [200] * 5
    assert answers[0].content == answers[3].content
    assert answers[1].content == answers[2].content == answers[4].content
    assert answers[0]["Content-Type"].startswith("application/vnd.oai.openapi")
    assert answers[2]["Content-Type"].startswith("application/json")
    assert 'filename="Cashback API.yaml"' in answers[0]["Content-Disposition"]
    # Once more from cold, as a new process starts.
    from core.api.openapi import openapi_document_clear

    openapi_document_clear()
    assert client.get(SCHEMA).content == answers[0].content
    assert client.get(SCHEMA, {"format": "json"}).content == answers[1].content
    assert len(built) == 1
    monkeypatch.undo()
    # What is served is the document, exactly as it is built.
    assert json.loads(answers[1].content) == SchemaGenerator().get_schema(request=None, public=True)


@pytest.mark.usefixtures("one_minute")
def test_the_document_and_the_docs_page_are_throttled_per_client_address(client, db, settings):
    settings.CASHBACK_ANONYMOUS_RATE_LIMIT = 3
    address, other = an_address(), an_address()
    first = [
        client.get(SCHEMA, REMOTE_ADDR=address).status_code,
        client.get(DOCS, REMOTE_ADDR=address).status_code,
        client.get(SCHEMA, {"format": "json"}, REMOTE_ADDR=address).status_code,
    ]
    assert first == [200, 200, 200]
    for path in (SCHEMA, DOCS):
        refused = client.get(path, REMOTE_ADDR=address)
        assert refused.status_code == 429
        assert refused["Content-Type"] == "application/json"
        assert refused.json() == error("throttled")
        assert 1 <= int(refused["Retry-After"]) <= 60
    assert client.get(SCHEMA, REMOTE_ADDR=other).status_code == 200
    assert client.get(DOCS, REMOTE_ADDR=other).status_code == 200


@pytest.mark.usefixtures("one_minute")
def test_health_checks_are_never_throttled(client, db, settings):
    settings.CASHBACK_ANONYMOUS_RATE_LIMIT = 1
    address = an_address()
    client.get(SCHEMA, REMOTE_ADDR=address)
    assert client.get(SCHEMA, REMOTE_ADDR=address).status_code == 429
    for _ in range(5):
        assert client.get("/healthz", REMOTE_ADDR=address).status_code == 200
        assert client.get("/readyz", REMOTE_ADDR=address).status_code == 200


@pytest.mark.usefixtures("one_minute")
def test_the_limit_is_120_a_minute_by_default(client, db):
    address = an_address()
    answers = [client.get(DOCS, REMOTE_ADDR=address).status_code for _ in range(121)]
    assert answers == [200] * 120 + [429]


@pytest.mark.usefixtures("one_minute")
def test_a_forwarded_for_header_does_not_escape_the_throttle_without_a_proxy_count(
    client, db, settings
):
    settings.CASHBACK_ANONYMOUS_RATE_LIMIT = 2
    address = an_address()
    answers = [
        client.get(DOCS, REMOTE_ADDR=address, HTTP_X_FORWARDED_FOR=an_address()).status_code
        for _ in range(3)
    ]
    assert answers == [200, 200, 429]


@pytest.mark.usefixtures("one_minute")
def test_behind_a_proxy_each_client_is_counted_by_the_address_the_proxy_saw(client, db, settings):
    # ADMIN_LOGIN_PROXY_COUNT=1, as config/settings.py turns it into django-ipware's terms.
    settings.AXES_IPWARE_META_PRECEDENCE_ORDER = ("HTTP_X_FORWARDED_FOR", "REMOTE_ADDR")
    settings.AXES_IPWARE_PROXY_COUNT = 0
    settings.CASHBACK_ANONYMOUS_RATE_LIMIT = 2
    proxy, client_a, client_b = an_address(), an_address(), an_address()

    def get(forwarded: str) -> int:
        return client.get(DOCS, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=forwarded).status_code

    # What a client writes before the proxy's entry does not change who it is.
    assert [get(client_a), get(f"{an_address()}, {client_a}"), get(client_a)] == [200, 200, 429]
    assert [get(client_b), get(client_b), get(client_b)] == [200, 200, 429]


@pytest.mark.usefixtures("one_minute")
def test_an_ipv6_client_is_counted_by_its_slash_64(client, db, settings):
    """One subscriber is given a /64: its other addresses do not buy it more requests."""
    settings.CASHBACK_ANONYMOUS_RATE_LIMIT = 2
    block = an_address().removesuffix("::1")
    answers = [
        client.get(DOCS, REMOTE_ADDR=f"{block}::{n:x}").status_code for n in (1, 0xBEEF, 0xF00D)
    ]
    assert answers == [200, 200, 429]
    assert client.get(DOCS, REMOTE_ADDR=an_address()).status_code == 200
