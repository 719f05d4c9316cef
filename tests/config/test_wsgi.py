"""The WSGI application serves the API through the API's middleware and the back office
through all of it."""

import io
import json
import os
import subprocess
import sys
from decimal import Decimal
from wsgiref.util import setup_testing_defaults

from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import close_old_connections

from config.wsgi import application


def serve(path: str, *, method: str = "GET", body: dict | None = None, **headers: str):
    raw = json.dumps(body).encode() if body is not None else b""
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": io.BytesIO(raw),
        "HTTP_X_FORWARDED_PROTO": "https",  # as the TLS-terminating proxy says
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }
    setup_testing_defaults(environ)
    answer: dict = {}

    def start_response(status, response_headers, exc_info=None):
        answer["status"] = int(status.split()[0])
        answer["headers"] = response_headers

    # As Django's test client does: the test's connection (and its transaction) stays open.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = application(environ, start_response)
        answer["body"] = b"".join(response)
        response.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return answer


def header_values(answer: dict, name: str) -> list[str]:
    return [value for key, value in answer["headers"] if key.lower() == name.lower()]


def test_an_earn_through_the_wsgi_application_answers_with_the_api_s_headers(merchant, card):
    answer = serve(
        "/api/v1/cashback/cashback/earn",
        method="POST",
        body={"card_id": card.pk, "email": "wsgi@example.com", "purchase_amount": "100"},
        x_app_id=merchant.app.app_id,
        x_api_key=merchant.api_key,
        x_request_id="till-7-req-1",
    )
    assert answer["status"] == 200, answer["body"]
    assert json.loads(answer["body"], parse_float=Decimal)["data"]["cashback_earned"] == 5
    assert header_values(answer, "X-Request-Id") == ["till-7-req-1"]
    assert header_values(answer, "X-Content-Type-Options") == ["nosniff"]
    assert header_values(answer, "X-Frame-Options") == ["DENY"]
    # No session, CSRF or messages machinery ran: nothing of a browser's is set or varied on.
    assert header_values(answer, "Set-Cookie") == []
    assert header_values(answer, "Vary") == []


def test_an_unknown_api_route_answers_in_the_envelope(db):
    answer = serve("/api/v1/cashback/nowhere")
    assert answer["status"] == 404
    assert json.loads(answer["body"])["error"]["code"] == "not_found"


def test_the_back_office_keeps_its_csrf_check_and_frame_refusal(db):
    answer = serve("/admin/login/")
    assert answer["status"] == 200
    assert b'name="csrfmiddlewaretoken"' in answer["body"]
    assert any(c.strip().startswith("csrftoken=") for c in header_values(answer, "Set-Cookie"))
    assert header_values(answer, "X-Frame-Options") == ["DENY"]


def test_the_api_middleware_is_the_site_s_own_in_the_same_order():
    positions = [settings.MIDDLEWARE.index(name) for name in settings.API_MIDDLEWARE]
    assert positions == sorted(positions)


def test_the_loaded_application_is_kept_out_of_the_collectors_passes():
    """Loading the WSGI module freezes what it loaded (`gc.freeze`): a full collection, which
    pauses the request that triggers it, walks only what requests made since."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import gc, config.wsgi; print(gc.get_freeze_count())"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
    )
    assert int(loaded.stdout) > 50_000
