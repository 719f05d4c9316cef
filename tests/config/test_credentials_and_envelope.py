import uuid

import pytest
from django.core.cache import cache

from apps_auth.services import api_key_revoke
from tests.factories import AppFactory
from tests.helpers import error

API = "/api/v1/cashback"
EARN = f"{API}/cashback/earn"

ENDPOINTS = [
    ("post", f"{API}/cashback/earn", "cashback_write"),
    ("post", f"{API}/cashback/redeem", "cashback_write"),
    ("post", f"{API}/cashback/refund", "cashback_write"),
    ("get", f"{API}/cashback/balance", "cashback_read"),
    ("get", f"{API}/cashback/history", "cashback_read"),
    ("get", f"{API}/cards", "card_read"),
    ("get", f"{API}/cards/1", "card_read"),
]


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS)
def test_every_endpoint_needs_credentials(client, db, method, path, scope):
    response = getattr(client, method)(path, content_type="application/json")
    assert response.status_code == 401
    assert response.json() == error(
        "authentication_failed",
        "Authentication credentials were not provided.",
        {"reason": "credentials_invalid"},
    )
    assert response["WWW-Authenticate"] == 'ApiKey realm="cashback"'


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS)
def test_a_wrong_key_is_401_even_with_a_bad_body(client, merchant, method, path, scope):
    response = client.generic(
        method.upper(),
        path,
        "{not json",
        content_type="application/json",
        headers={"X-App-Id": merchant.app.app_id, "X-Api-Key": merchant.api_key + "x"},
    )
    assert response.status_code == 401
    assert response.json() == error(
        "authentication_failed",
        "The app id or API key is invalid.",
        {"reason": "credentials_invalid"},
    )


@pytest.mark.parametrize(("method", "path", "scope"), ENDPOINTS)
def test_a_missing_scope_is_403_before_the_body_is_read(make_merchant, method, path, scope):
    others = [s for s in ("cashback_read", "cashback_write", "card_read") if s != scope]
    merchant = make_merchant(scopes=others)
    response = merchant.client.generic(
        method.upper(), path, "{not json", content_type="application/json"
    )
    assert response.status_code == 403
    assert response.json() == error("permission_denied", f"This app lacks the '{scope}' scope.")


def test_a_key_of_another_app_is_401(client, merchant, other_merchant):
    response = client.get(
        f"{API}/cards",
        headers={"X-App-Id": merchant.app.app_id, "X-Api-Key": other_merchant.api_key},
    )
    assert response.status_code == 401


def test_a_revoked_key_is_401_at_once(merchant, django_capture_on_commit_callbacks):
    assert merchant.client.get(f"{API}/cards").status_code == 200  # the key is cached now
    with django_capture_on_commit_callbacks(execute=True):
        api_key_revoke(app=merchant.app, raw_key=merchant.api_key)
    assert merchant.client.get(f"{API}/cards").status_code == 401


def test_an_inactive_app_is_401_at_once(merchant, django_capture_on_commit_callbacks):
    assert merchant.client.get(f"{API}/cards").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        merchant.app.is_active = False
        merchant.app.save()
    assert merchant.client.get(f"{API}/cards").status_code == 401


def test_a_scope_taken_away_is_403_at_once(merchant, django_capture_on_commit_callbacks):
    assert merchant.client.get(f"{API}/cards").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        merchant.app.scopes = ["cashback_read"]
        merchant.app.save()
    assert merchant.client.get(f"{API}/cards").status_code == 403


def test_only_the_key_hash_is_stored(merchant):
    key = merchant.app.api_keys.get()
    assert merchant.api_key not in (key.prefix, key.key_hash)
    assert merchant.api_key.startswith("test_")
    assert len(key.key_hash) == 64


def test_live_apps_get_live_keys(make_merchant):
    assert make_merchant(mode="live").api_key.startswith("live_")


def test_malformed_json_is_a_parse_error(api):
    response = api.post(EARN, '{"card_id": 1,', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_a_non_json_body_is_a_parse_error(api):
    response = api.post(EARN, "card_id=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_a_json_list_body_is_a_validation_error(api):
    response = api.post(EARN, "[1, 2]", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "validation_error"


def test_unknown_routes_under_api_answer_in_the_envelope(api):
    response = api.get(f"{API}/nothing/here")
    assert response.status_code == 404
    assert response.json() == error("not_found", "No such endpoint.")


def test_documented_paths_answer_without_a_trailing_slash_or_redirect(api):
    assert api.get(f"{API}/cards").status_code == 200
    assert api.get(f"{API}/cards/").status_code == 404


def test_a_wrong_method_is_405(api):
    response = api.delete(f"{API}/cards")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_every_response_carries_a_request_id(api):
    assert len(api.get(f"{API}/cards")["X-Request-Id"]) == 32
    echoed = api.get(f"{API}/cards", headers={"X-Request-Id": "till-42.abc"})
    assert echoed["X-Request-Id"] == "till-42.abc"
    refused = api.get(f"{API}/cards", headers={"X-Request-Id": "bad id with spaces"})
    assert refused["X-Request-Id"] != "bad id with spaces"


def test_an_unexpected_error_is_a_500_envelope_without_a_trace(api, card, member, monkeypatch):
    def explode(**kwargs):
        raise RuntimeError("secret internals")

    monkeypatch.setattr("cashback.views.cashback_earn", explode)
    api.raise_request_exception = False
    response = api.post(EARN, {"card_id": card.pk, "member_id": member.pk, "purchase_amount": 50})
    assert response.status_code == 500
    assert response.json() == error("server_error")
    assert b"secret internals" not in response.content


def test_schema_docs_and_health_need_no_credentials(client, db):
    schema = client.get(f"{API}/schema", headers={"Accept": "application/json"})
    assert schema.status_code == 200
    document = schema.json()
    assert document["openapi"].startswith("3.")
    assert set(document["components"]["securitySchemes"]) == {"AppId", "ApiKey", "MemberToken"}
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
        "description": document["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    paths = document["paths"]
    for path in (
        "/api/v1/cashback/cashback/earn",
        "/api/v1/cashback/cashback/redeem",
        "/api/v1/cashback/cashback/refund",
        "/api/v1/cashback/cashback/balance",
        "/api/v1/cashback/cashback/history",
        "/api/v1/cashback/cards",
        "/api/v1/cashback/cards/{id}",
    ):
        assert path in paths
    redeem = paths["/api/v1/cashback/cashback/redeem"]["post"]
    assert redeem["security"] == [{"AppId": [], "ApiKey": [], "MemberToken": []}]
    assert "requestBody" in redeem
    assert "422" in redeem["responses"]

    docs = client.get(f"{API}/docs")
    assert docs.status_code == 200
    assert b"/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in docs.content
    assert b"cdn" not in docs.content.lower()

    health = client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "database": "ok"}


def test_apps_without_keys_cannot_authenticate(client, db):
    app = AppFactory.create()
    response = client.get(f"{API}/cards", headers={"X-App-Id": app.app_id, "X-Api-Key": "test_x"})
    assert response.status_code == 401


def test_keys_are_checked_without_a_database_query_and_changes_elsewhere_land_at_once(
    merchant, django_assert_num_queries, shared_cache_off_the_database
):
    """Another server process revokes the key: what this one learns of it is the shared
    configuration generation, read on every request."""
    from apps_auth.models import ApiKey
    from core.generations import GENERATION_KEY

    assert merchant.client.get(f"{API}/cards").status_code == 200
    with django_assert_num_queries(1):  # the cards; not the key
        assert merchant.client.get(f"{API}/cards").status_code == 200
    # As another process's revocation does: the row, then, once committed, a new generation.
    ApiKey.objects.update(revoked_at="2026-01-01T00:00:00Z")
    assert merchant.client.get(f"{API}/cards").status_code == 200  # no word of it yet
    cache.set(GENERATION_KEY, uuid.uuid4().hex, timeout=None)  # another process
    assert merchant.client.get(f"{API}/cards").status_code == 401


def test_readyz_checks_the_database_and_the_migrations(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "migrations": "applied"}


def test_access_lines_carry_the_request_id(api, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="cashback.access")
    api.get(f"{API}/cards", headers={"X-Request-Id": "till-9"})
    [record] = [r for r in caplog.records if r.name == "cashback.access"]
    assert record.request_id == "till-9"
    assert record.status == 200
    assert record.path == f"{API}/cards"
    assert record.duration_ms >= 0


def test_the_api_answers_json_whatever_accept_says(api, card):
    for accept in ("text/html", "application/xml", "*/*", "application/json"):
        response = api.get(f"/api/v1/cashback/cards/{card.pk}", headers={"Accept": accept})
        assert response.status_code == 200
        assert response["Content-Type"].startswith("application/json")
        assert response.json()["success"] is True


def test_the_schema_still_comes_as_yaml_or_json(client, db):
    assert client.get(f"{API}/schema")["Content-Type"].startswith("application/vnd.oai.openapi")
    as_json = client.get(f"{API}/schema", headers={"Accept": "application/json"})
    assert as_json["Content-Type"].startswith("application/json")
