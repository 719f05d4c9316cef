"""docs/integrating.md works as written: its ```python blocks run in order, in one namespace,
against a demo server started as `make run` starts one, with the environment variables the guide
tells the reader to export (the snippets assert what they show). And its client retries exactly
what the guide says is safe, with one Idempotency-Key for all the attempts of an operation."""

import json
import re
import shlex
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from tests.config.demo_server import ROOT, demo_server

GUIDE = ROOT / "docs" / "integrating.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def blocks(language: str) -> list[tuple[int, str]]:
    """The guide's code blocks in `language`: (line of the opening fence, source)."""
    text = GUIDE.read_text()
    return [
        (text.count("\n", 0, m.start()) + 1, m.group(2))
        for m in FENCE.finditer(text)
        if m.group(1) == language
    ]


def run_snippets(snippets: list[tuple[int, str]], namespace: dict) -> None:
    for line, source in snippets:
        # Tracebacks name the guide's own lines.
        exec(compile("\n" * line + source, str(GUIDE), "exec"), namespace)  # noqa: S102


def exported_names() -> set[str]:
    names = set()
    for _, source in blocks("console"):
        for line in source.splitlines():
            words = shlex.split(line.removeprefix("$ "), comments=True)
            if words and words[0] == "export":
                names |= {word.partition("=")[0] for word in words[1:]}
    return names


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("guide")
    with demo_server("guide", folder / "server.log") as running:
        yield running


def test_every_snippet_of_the_guide_runs_in_order_against_a_fresh_make_run(server, monkeypatch):
    environment = {
        "CASHBACK_API": server.api,
        "CASHBACK_APP_ID": server.credentials["app_id"],
        "CASHBACK_API_KEY": server.credentials["api_key"],
        "CASHBACK_CARD_ID": str(server.credentials["card_id"]),
    }
    assert exported_names() == environment.keys(), "the guide exports what the test sets"
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    snippets = blocks("python")
    assert len(snippets) >= 8

    run_snippets(snippets, {"__name__": "guide"})


class Scripted:
    """An HTTP server on loopback answering each request with the next of `answers`: "drop"
    (the connection closes without an answer), or (status, body, headers). Keeps each request's
    Idempotency-Key and body."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.requests: list[tuple[str | None, bytes]] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                scripted.requests.append((self.headers.get("Idempotency-Key"), body))
                answer = scripted.answers.pop(0)
                if answer == "drop":
                    self.close_connection = True
                    return
                status, payload, headers = answer
                content = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, format, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        threading.Thread(
            target=self.http.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/api/v1/cashback"


def _error(code: str) -> dict:
    return {"success": False, "error": {"code": code, "message": code, "details": {}}}


@pytest.fixture
def guide_client(monkeypatch):
    """The guide's first snippet (its client) against a Scripted server, sleeping instantly;
    yields a function that takes the answers and returns (namespace, server, waits)."""
    started: list[Scripted] = []

    def make(answers):
        scripted = Scripted(answers)
        started.append(scripted)
        for name, value in {
            "CASHBACK_API": scripted.url,
            "CASHBACK_APP_ID": "app_x",
            "CASHBACK_API_KEY": "test_x",
            "CASHBACK_CARD_ID": "1",
        }.items():
            monkeypatch.setenv(name, value)
        namespace: dict = {"__name__": "guide"}
        run_snippets(blocks("python")[:1], namespace)
        waits: list[float] = []
        namespace["time"] = SimpleNamespace(sleep=waits.append)
        return namespace, scripted, waits

    yield make
    for scripted in started:
        scripted.http.shutdown()
        scripted.http.server_close()


def test_the_guides_client_retries_what_is_safe_under_one_idempotency_key(guide_client):
    ok = {"success": True, "data": {"transaction_id": 7, "amount_redeemed": 1.5}}
    guide, server, waits = guide_client(
        [
            "drop",
            (503, _error("service_unavailable"), {"Retry-After": "0"}),
            (409, _error("request_in_progress"), {}),
            (429, _error("throttled"), {"Retry-After": "0"}),
            (200, ok, {}),
        ]
    )
    data = guide["call"](
        "POST", "/cashback/redeem", {"card_id": 1, "amount": guide["Decimal"]("1.5")}
    )

    assert data == {"transaction_id": 7, "amount_redeemed": guide["Decimal"]("1.5")}
    keys = {key for key, _ in server.requests}
    assert len(server.requests) == 5
    assert len(keys) == 1
    assert None not in keys
    assert {body for _, body in server.requests} == {b'{"card_id": 1, "amount": "1.5"}'}
    assert len(waits) == 4
    assert waits[1] == waits[3] == 0  # Retry-After, where it was given


@pytest.mark.parametrize(
    "answer",
    [
        (422, _error("insufficient_balance"), {}),
        (429, _error("too_many_attempts"), {"Retry-After": "0"}),
        (429, _error("throttled"), {"Retry-After": "600"}),  # longer than a till waits
        (409, _error("idempotency_key_reused"), {}),
        (401, _error("authentication_failed"), {}),
    ],
)
def test_the_guides_client_does_not_retry_what_would_answer_the_same(guide_client, answer):
    guide, server, waits = guide_client([answer])
    with pytest.raises(guide["CashbackError"]) as raised:
        guide["call"]("POST", "/cashback/redeem", {"card_id": 1, "amount": 1})
    assert raised.value.code == answer[1]["error"]["code"]
    assert (len(server.requests), waits) == (1, [])


def test_the_guides_client_gives_up_after_its_attempts(guide_client):
    unavailable = (503, _error("service_unavailable"), {"Retry-After": "0"})
    guide, server, waits = guide_client([unavailable] * 5)
    with pytest.raises(guide["CashbackError"]) as raised:
        guide["call"]("POST", "/cashback/earn", {"card_id": 1})
    assert raised.value.status == 503
    assert len(server.requests) == 5
    assert len({key for key, _ in server.requests}) == 1
