"""The OpenAPI document says exactly what the API does, in words for integrators: the real
parameters, every status with its error codes and headers, amounts as decimals, and nothing of
the code's own docstrings."""

import ast
from pathlib import Path

import pytest
from drf_spectacular.generators import SchemaGenerator

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["apps_auth", "cards", "cashback", "config", "core", "members", "webhooks"]
AUTHENTICATED = {"401", "403", "429", "503"}


@pytest.fixture(scope="module")
def document() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(document: dict):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield f"{method.upper()} {path}", method, operation


def texts(value) -> list[str]:
    """Every description, summary and title in the document."""
    if isinstance(value, dict):
        found = [v for k, v in value.items() if k in ("description", "summary", "title")]
        return [t for t in found if isinstance(t, str)] + [
            t for v in value.values() for t in texts(v)
        ]
    if isinstance(value, list):
        return [t for v in value for t in texts(v)]
    return []


def docstrings() -> list[tuple[str, str]]:
    """The first paragraph of every docstring of the project's code, as one line."""
    found = []
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef):
                    text = ast.get_docstring(node)
                    if text:
                        found.append(
                            (f"{path.relative_to(ROOT)}", " ".join(text.split("\n\n")[0].split()))
                        )
    return found


def test_no_docstring_of_the_code_reaches_the_document(document):
    written = " ".join(" ".join(texts(document)).split())
    leaked = [(where, text) for where, text in docstrings() if text in written]
    assert leaked == []


def test_every_operation_is_described_with_an_example(document):
    for label, _, operation in operations(document):
        assert operation.get("summary"), label
        assert operation.get("description"), label
        if "requestBody" in operation:
            body = operation["requestBody"]
            assert body["required"] is True, label
            assert body["content"]["application/json"].get("examples"), label
        for status, response in operation["responses"].items():
            assert response["description"], (label, status)
            assert response["content"]["application/json"].get("examples"), (label, status)


# POSTs that write nothing: there is nothing for a retry to replay.
WRITING_NOTHING = {"quote_cashback"}


def test_every_operation_declares_the_statuses_every_client_meets(document):
    for label, method, operation in operations(document):
        responses = operation["responses"]
        assert set(responses) >= AUTHENTICATED, label
        if method in ("get", "post"):
            assert "400" in responses, label
        for status, response in responses.items():
            headers = response.get("headers", {})
            assert "X-Request-Id" in headers, (label, status)
            assert ("Retry-After" in headers) == (status in {"423", "429", "503"}), (label, status)
        if method == "post" and operation["operationId"] not in WRITING_NOTHING:
            assert "Idempotent-Replayed" in responses["200"]["headers"], label
            names = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
            assert "Idempotency-Key" in names, label
            assert "409" in responses, label


def test_each_error_answer_lists_the_codes_it_can_carry(document):
    schemas = document["components"]["schemas"]
    redeem = document["paths"]["/api/v1/cashback/cashback/redeem"]["post"]["responses"]

    def codes(status: str) -> set[str]:
        schema = redeem[status]["content"]["application/json"]["schema"]
        refs = schema.get("oneOf", [schema])
        found = set()
        for ref in refs:
            envelope = schemas[ref["$ref"].rsplit("/", 1)[1]]
            error = schemas[envelope["properties"]["error"]["$ref"].rsplit("/", 1)[1]]
            code = error["properties"]["code"]
            found |= set(
                code["enum"]
                if "enum" in code
                else schemas[code["allOf"][0]["$ref"].rsplit("/", 1)[1]]["enum"]
            )
        return found

    assert codes("400") == {"validation_error", "parse_error", "pin_not_allowed", "pin_not_set"}
    assert codes("403") == {"permission_denied", "invalid_pin"}
    assert codes("409") == {"idempotency_key_reused", "request_in_progress", "duplicate_reference"}
    assert codes("422") == {"card_inactive", "insufficient_balance"}
    assert codes("423") == {"pin_locked"}
    assert codes("429") == {"throttled"}
    assert codes("503") == {"service_unavailable"}


def test_every_number_is_a_decimal_and_request_amounts_accept_strings(document):
    schemas = document["components"]["schemas"]

    def numbers(schema, where):
        if isinstance(schema, dict):
            if schema.get("type") == "number":
                yield where, schema
            for key, value in schema.items():
                yield from numbers(value, f"{where}.{key}")
        elif isinstance(schema, list):
            for i, value in enumerate(schema):
                yield from numbers(value, f"{where}[{i}]")

    found = list(numbers(schemas, "schemas"))
    assert found
    for where, schema in found:
        assert schema.get("format") == "decimal", where
    earn = schemas["EarnRequest"]["properties"]["purchase_amount"]["oneOf"]
    assert [(s["type"], s["format"]) for s in earn] == [
        ("number", "decimal"),
        ("string", "decimal"),
    ]


def test_history_lists_exactly_its_query_parameters(document):
    history = document["paths"]["/api/v1/cashback/cashback/history"]["get"]
    query = {
        p["name"]: p.get("required", False) for p in history["parameters"] if p["in"] == "query"
    }
    assert query == {
        "card_id": True,
        "member_id": False,  # or email, or phone
        "email": False,
        "phone": False,
        "limit": False,
        "offset": False,
        "type": False,
        "created_after": False,
        "created_before": False,
    }
