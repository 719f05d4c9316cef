"""How the OpenAPI document describes this API, for the integrators who read it and the client
generators that compile it.

- Every response is an envelope object, never a bare list.
- Each operation declares its own errors in its `extend_schema` (`error_responses`); the errors
  every operation of its kind can answer are added here (`implied_errors`): 401, 403, 429 and
  503 on every authenticated operation, 400 on every body and every query. A response lists
  the error codes it can carry: its schema is one envelope per code, each with its code as the
  only value of `error.code`, and its description says what each means.
- Response headers: `X-Request-Id` on every response, `Retry-After` on 423, 429 and 503,
  `Idempotent-Replayed` on the POST answers a retry can replay.
- No developer docstring reaches the document: descriptions come from `extend_schema`,
  `help_text` and the texts here only.
"""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse

from core.api.fields import MAX_ID
from core.api.responses import NOT_KEPT, REPLAYED
from core.errors import AuthenticationFailed, DomainError, InvalidInput, PermissionDenied, Throttled

# Errors


@dataclass(frozen=True)
class ErrorDoc:
    """One error code as the document shows it: its status, its code and what it means."""

    status: int
    code: str
    meaning: str
    message: str = ""  # as the API sends it, for the examples; else `meaning`

    @classmethod
    def of(cls, error: "type[DomainError] | ErrorDoc", meaning: str | None = None) -> "ErrorDoc":
        """The error's documentation: a domain error class speaks through its default message,
        unless `meaning` says more precisely what it means for one operation."""
        if isinstance(error, ErrorDoc):
            return error if meaning is None else replace(error, meaning=meaning)
        message = error.default_message
        return cls(error.status_code, error.code, meaning or message, message)


def path_id(name: str, description: str) -> OpenApiParameter:
    """A path's id parameter, as the API reads ids: a positive 64-bit integer."""
    return OpenApiParameter(
        name,
        {"type": "integer", "minimum": 1, "maximum": MAX_ID, "format": "int64"},
        OpenApiParameter.PATH,
        description=description,
    )


def documented(error: "type[DomainError] | ErrorDoc", meaning: str) -> ErrorDoc:
    """An error with what it means for one operation, e.g. which thing was not found."""
    return ErrorDoc.of(error, meaning)


VALIDATION_ERROR = ErrorDoc(
    400,
    InvalidInput.code,
    "A field, query parameter or header is missing or invalid; `details` names each one "
    "with its messages. Correct the request before sending it again.",
    "The request is invalid.",
)
PARSE_ERROR = ErrorDoc(
    400,
    "parse_error",
    "The body is not a JSON object in UTF-8, or is too large.",
    "JSON parse error - Expecting value: line 1 column 1 (char 0)",
)
CREDENTIALS_REFUSED = ErrorDoc(
    401,
    AuthenticationFailed.code,
    "X-App-Id or X-Api-Key is missing, unknown or revoked (`details.reason` credentials_invalid).",
    "The app id or API key is invalid.",
)
SCOPE_MISSING = ErrorDoc(
    403,
    PermissionDenied.code,
    "The app's key is valid but the app lacks this operation's scope.",
    "You do not have permission to perform this action.",
)
THROTTLED = ErrorDoc(
    429,
    Throttled.code,
    "The app's rate limit per minute is reached.",
    "Request was throttled. Expected available in 42 seconds.",
)
SERVICE_UNAVAILABLE = ErrorDoc(
    503,
    "service_unavailable",
    "The service cannot reach its database right now. Nothing was committed: retry after "
    "`Retry-After` seconds with the same Idempotency-Key.",
    "The service cannot reach its database right now; retry shortly with the same Idempotency-Key.",
)

# What each status means, before the codes it can carry.
STATUS_MEANINGS = {
    400: "The request is invalid; nothing was done.",
    401: "Authentication failed; nothing was done.",
    403: "Authenticated, but not allowed; nothing was done.",
    404: "Not found, or not the app's (another app's objects are never shown); nothing was done.",
    409: "In conflict with an earlier request; nothing more was done.",
    422: "Well-formed, but refused by the current state; nothing was done.",
    423: "Locked for now; nothing was done. Retry after `Retry-After` seconds.",
    429: "Too many requests; nothing was done. Retry after `Retry-After` seconds.",
    503: "Temporarily unavailable; nothing was done.",
}

# What `details` carries for the codes that give more than a message, by code.
ERROR_DETAILS: dict[str, dict[str, Any]] = {
    "validation_error": {
        "description": "Each invalid field, query parameter or header, with its messages.",
        "additionalProperties": True,
    },
    "authentication_failed": {
        "properties": {
            "reason": {
                "type": "string",
                "enum": [
                    "credentials_invalid",
                    "member_token_missing",
                    "member_token_expired",
                    "member_token_invalid",
                ],
                "description": "What to do: `credentials_invalid`, check X-App-Id and X-Api-Key; "
                "`member_token_missing`, send the member token; `member_token_expired`, sign the "
                "member in again; `member_token_invalid`, the token is forged, malformed or "
                "another app's: sign the member in again.",
            }
        },
        "required": ["reason"],
    },
    "invalid_pin": {
        "properties": {
            "attempts_left": {
                "type": "integer",
                "description": "Wrong PINs left before the PIN locks for 15 minutes.",
            }
        },
        "required": ["attempts_left"],
    },
    "pin_locked": {
        "properties": {
            "locked_until": {
                "type": "string",
                "format": "date-time",
                "description": "When the member can redeem again.",
            }
        },
        "required": ["locked_until"],
    },
    "duplicate_reference": {
        "properties": {
            "transaction_id": {
                "type": "integer",
                "description": "The entry the reference was first used for.",
            }
        },
        "required": ["transaction_id"],
    },
    "member_conflict": {
        "properties": {
            "email_member_id": {"type": "integer", "description": "The member with the email."},
            "phone_member_id": {"type": "integer", "description": "The member with the phone."},
        },
        "required": ["email_member_id", "phone_member_id"],
    },
    "invalid_otp": {
        "properties": {
            "attempts_left": {
                "type": "integer",
                "description": "Wrong codes left before the challenge is dead (absent when the "
                "code was used or has expired).",
            }
        },
    },
    "insufficient_balance": {
        "properties": {
            "balance": {
                "type": "number",
                "format": "decimal",
                "description": "The spendable balance.",
            },
            "amount": {
                "type": "number",
                "format": "decimal",
                "description": "The amount asked for.",
            },
        },
    },
    "below_minimum_purchase": {
        "properties": {
            "cashback_min_amount": {
                "type": "number",
                "format": "decimal",
                "description": "The card's smallest purchase that earns (absent when the "
                "purchase is above it but earns less than the currency's minor unit).",
            }
        },
    },
    "refund_exceeds_purchase": {
        "properties": {
            "purchase_amount": {
                "type": "number",
                "format": "decimal",
                "description": "The earning's purchase.",
            },
            "already_refunded": {
                "type": "number",
                "format": "decimal",
                "description": "What earlier refunds of that earning took back.",
            },
        },
    },
    "already_reversed": {
        "properties": {
            "reversal_transaction_id": {
                "type": "integer",
                "description": "The reversal that already gave the redemption back.",
            }
        },
        "required": ["reversal_transaction_id"],
    },
    "reversal_window_closed": {
        "properties": {
            "redeemed_at": {"type": "string", "format": "date-time"},
            "reversal_window_hours": {"type": "integer"},
        },
        "required": ["redeemed_at", "reversal_window_hours"],
    },
    "endpoint_limit_reached": {
        "properties": {
            "limit": {"type": "integer", "description": "The enabled endpoints an app may hold."},
        },
        "required": ["limit"],
    },
}

# A plausible `details` for the examples, by code.
ERROR_EXAMPLE_DETAILS: dict[str, dict[str, Any]] = {
    "validation_error": {"purchase_amount": ["A number is required."]},
    "authentication_failed": {"reason": "credentials_invalid"},
    "invalid_pin": {"attempts_left": 3},
    "pin_locked": {"locked_until": "2025-01-15T11:15:00Z"},
    "duplicate_reference": {"transaction_id": 456},
    "member_conflict": {"email_member_id": 123, "phone_member_id": 124},
    "invalid_otp": {"attempts_left": 4},
    "insufficient_balance": {"balance": Decimal("7.500"), "amount": Decimal("10.000")},
    "below_minimum_purchase": {"cashback_min_amount": Decimal("10.000")},
    "refund_exceeds_purchase": {
        "purchase_amount": Decimal("50.000"),
        "already_refunded": Decimal("40.000"),
    },
    "already_reversed": {"reversal_transaction_id": 461},
    "reversal_window_closed": {
        "redeemed_at": "2025-01-15T11:00:00Z",
        "reversal_window_hours": 72,
    },
    "endpoint_limit_reached": {"limit": 16},
}


class ErrorResponses(OpenApiResponse):
    """An operation's declared errors of one status, until the schema adds the implied ones."""

    def __init__(self, docs: tuple[ErrorDoc, ...]):
        super().__init__()
        self.docs = docs

    @classmethod
    def by_status(cls, errors: "Iterable[type[DomainError] | ErrorDoc]") -> dict:
        docs = [ErrorDoc.of(error) for error in errors]
        return {
            status: cls(tuple(doc for doc in docs if doc.status == status))
            for status in _statuses(docs)
        }


def _statuses(docs: Iterable[ErrorDoc]) -> list[int]:
    return sorted({doc.status for doc in docs})


def _camel(code: str) -> str:
    return "".join(part.capitalize() for part in code.split("_"))


def error_component_name(code: str) -> str:
    """`insufficient_balance` → `InsufficientBalanceError`; `validation_error` →
    `ValidationError`."""
    name = _camel(code)
    return name if name.endswith("Error") else f"{name}Error"


def _error_schemas(code: str) -> tuple[dict, dict]:
    """The error object of one code and its envelope."""
    details = {"type": "object", "additionalProperties": {}}
    details.update(ERROR_DETAILS.get(code, {}))
    details.setdefault(
        "description",
        "More about the error." if "required" in details else "More about the error; often empty.",
    )
    error = {
        "type": "object",
        "description": f"An error with the code `{code}`; each response that can carry it "
        "says what it means there.",
        "properties": {
            "code": {"type": "string", "enum": [code], "description": "Stable; switch on it."},
            "message": {"type": "string", "description": "For people; may change."},
            "details": details,
        },
        "required": ["code", "message", "details"],
    }
    name = error_component_name(code)
    envelope = {
        "type": "object",
        "properties": {
            "success": {"type": "boolean", "description": "Always false."},
            "error": {"$ref": f"#/components/schemas/{name}"},
        },
        "required": ["success", "error"],
    }
    return error, envelope


# Parameters and headers


class ParameterWithErrors(OpenApiParameter):
    """A parameter, with the errors it brings to every operation that takes it (a header whose
    handling can refuse the request)."""

    def __init__(self, *args, errors: "Iterable[type[DomainError] | ErrorDoc]" = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.errors = tuple(errors)


REQUEST_ID = "X-Request-Id"
RETRY_AFTER = "Retry-After"
_REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"  # core.api.middleware keeps the caller's so

REQUEST_ID_PARAMETER = OpenApiParameter(
    REQUEST_ID,
    {"type": "string", "pattern": _REQUEST_ID_PATTERN},
    OpenApiParameter.HEADER,
    description="Your id for this request (1 to 128 letters, digits, `.`, `_`, `:` or `-`), "
    "echoed in the response's X-Request-Id and written in our logs; otherwise one is made.",
)
_RESPONSE_HEADERS = {
    REQUEST_ID: {
        "schema": {"type": "string"},
        "description": "The request's id: yours when you sent a valid one, else ours. Quote "
        "it when you ask us about a request.",
        "required": True,
    },
    RETRY_AFTER: {
        "schema": {"type": "integer", "minimum": 0},
        "description": "Seconds to wait before trying again.",
        "required": True,
    },
    REPLAYED: {
        "schema": {"type": "string", "enum": ["true"]},
        "description": "Present (`true`) when this is the kept answer of an earlier request "
        "with the same Idempotency-Key, or the same reference and body: nothing was done again.",
    },
}
RETRY_AFTER_STATUSES = {423, 429, 503}


# The schema of each operation


class EnvelopeAutoSchema(AutoSchema):
    """Every response of this API is an envelope object, never a bare list, lists included."""

    def _is_list_view(self, serializer=None) -> bool:
        return False

    # Descriptions come from `extend_schema` only: the view's docstrings are for developers.
    def get_description(self) -> str:  # type: ignore[override]
        return ""

    def _map_basic_serializer(self, serializer, direction):
        schema = super()._map_basic_serializer(serializer, direction)
        schema.pop("description", None)  # the serializer's docstring
        return schema

    def _map_response_type_hint(self, method):
        schema = super()._map_response_type_hint(method)
        schema.pop("description", None)  # the method's docstring
        return schema

    def get_override_parameters(self):
        return [*super().get_override_parameters(), REQUEST_ID_PARAMETER]

    def implied_errors(self) -> list[ErrorDoc]:
        """The errors every operation like this one can answer, whatever it does."""
        implied = []
        has_body = self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer()
        if self.method == "GET" or has_body:
            implied.append(VALIDATION_ERROR)  # a query (even unknown parameters) or a body
        if has_body:
            implied.append(PARSE_ERROR)
        if self.get_auth():
            implied += [CREDENTIALS_REFUSED, SCOPE_MISSING, THROTTLED]
        implied.append(SERVICE_UNAVAILABLE)
        for parameter in self.get_override_parameters():
            if isinstance(parameter, ParameterWithErrors):
                implied += [ErrorDoc.of(error) for error in parameter.errors]
        return implied

    def _get_response_bodies(self, direction="response"):
        declared = self.get_response_serializers()
        if not isinstance(declared, dict):
            return super()._get_response_bodies(direction)
        docs = self.implied_errors()
        responses = {}
        for code, value in declared.items():
            if isinstance(value, ErrorResponses):
                docs += value.docs
            elif isinstance(value, OpenApiResponse):
                responses[int(code)] = value
            else:
                responses[int(code)] = OpenApiResponse(value, self._success_description())
        for status in _statuses(docs):
            responses[status] = self._error_response(
                status, [d for d in docs if d.status == status]
            )
        return {
            str(status): self._get_response_for_code(response, str(status), direction=direction)
            for status, response in sorted(responses.items())
        }

    def _success_description(self) -> str:
        if self.method == "POST":
            return (
                "Done; the result is in `data`. With `Idempotent-Replayed: true`, this is the "
                "kept answer of an earlier request with the same Idempotency-Key (or reference "
                "and body), and nothing was done again."
            )
        if self.method == "DELETE":
            return "Deleted; `data` names what was."
        return "The result, in `data`."

    def _error_response(self, status: int, docs: list[ErrorDoc]) -> OpenApiResponse:
        """One status's answer: an envelope per code it can carry, said in the description."""
        by_code: dict[str, list[ErrorDoc]] = {}
        for doc in docs:
            same = by_code.setdefault(doc.code, [])
            if all(doc.meaning != other.meaning for other in same):
                same.append(doc)
        refs, examples, lines = [], [], [STATUS_MEANINGS[status]]
        for code, same in sorted(by_code.items()):
            refs.append(self._error_component(code))
            lines.append(f"- `{code}`: " + " Or: ".join(doc.meaning for doc in same))
            example = {
                "code": code,
                "message": same[0].message or same[0].meaning,
                "details": ERROR_EXAMPLE_DETAILS.get(code, {}),
            }
            examples.append(OpenApiExample(code, value={"success": False, "error": example}))
        return OpenApiResponse(
            response=refs[0] if len(refs) == 1 else {"oneOf": refs},
            description="\n".join(lines),
            examples=examples,
        )

    def _error_component(self, code: str) -> dict:
        """The envelope component of one error code (and its error object), registered once."""
        name = error_component_name(code)
        error, envelope = _error_schemas(code)
        for component_name, schema in ((name, error), (f"{name}Envelope", envelope)):
            self.registry.register_on_missing(
                ResolvedComponent(
                    name=component_name,
                    type=ResolvedComponent.SCHEMA,
                    schema=schema,
                    object=component_name,
                )
            )
        return {"$ref": f"#/components/schemas/{name}Envelope"}

    def _get_response_headers_for_code(self, status_code, direction="response"):
        headers = super()._get_response_headers_for_code(status_code, direction)
        status = int(status_code)
        names = [REQUEST_ID]
        if status in RETRY_AFTER_STATUSES:
            names.append(RETRY_AFTER)
        if self.method == "POST" and status < 500 and status not in NOT_KEPT:
            names.append(REPLAYED)
        for name in names:
            component = ResolvedComponent(
                name=name,
                type=ResolvedComponent.HEADER,
                schema=_RESPONSE_HEADERS[name],
                object=name,
            )
            self.registry.register_on_missing(component)
            headers[name] = component.ref
        return headers


# Postprocessing hooks (SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"])


def refuse_unknown_request_fields(result, generator, request, public):
    """Request bodies refuse unknown fields (see `StrictSerializer`); the document says so."""
    for name, component in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request") and component.get("type") == "object":
            component["additionalProperties"] = False
    return result


def require_request_bodies(result, generator, request, public):
    """A POST with a body needs one, even when each of its fields is optional (a member named by
    id, email or phone)."""
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
    return result
