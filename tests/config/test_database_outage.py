"""While the database is unreachable the API answers a clear, retryable `503
service_unavailable` with `Retry-After`, never a 500; once it is back the service recovers by
itself, and a till retrying under its Idempotency-Key gets exactly one entry.

The server is real (gunicorn) and reaches PostgreSQL through a TCP relay that the test cuts
and restores, as an outage of the database, or of a pool in front of it, would."""

import contextlib
import json
import socket
import threading
import urllib.error
import urllib.request
from decimal import Decimal

import pytest
from django.conf import settings
from django.db import connection

from bench.harness import gunicorn
from cashback.models import LedgerEntry
from tests.helpers import error

pytestmark = pytest.mark.django_db(transaction=True)

API = "/api/v1/cashback"


class Relay:
    """Forwards a loopback port to PostgreSQL until cut: then open connections are dropped and
    new ones refused, until restored on the same port."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.port = 0
        self.sockets: list[socket.socket] = []
        self.listener: socket.socket | None = None
        self.lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = self._connect_upstream()
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        host, port = self.target
        if host.startswith("/"):  # a Unix socket folder, as the embedded server listens on
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(f"{host}/.s.PGSQL.{port}")
            return upstream
        return socket.create_connection(self.target)

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        if self.listener is None:
            return
        # shutdown() wakes the accepting thread; close() alone would leave it listening.
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.listener = None
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self.sockets = []


def call(base: str, path: str, headers: dict, body: dict | None = None) -> tuple[int, dict, dict]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + API + path, data=data, headers={**headers, "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


@pytest.fixture
def relayed_server(tmp_path, merchant):
    params = connection.get_connection_params()
    relay = Relay((str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432)))
    relay.start()
    env = {
        "DATABASE_URL": f"postgres://{params['user']}@127.0.0.1:{relay.port}/{params['dbname']}",
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "true",
        "REDIS_URL": "redis://127.0.0.1:6379/13",  # the cache outlives the database outage
    }
    with gunicorn(
        "config.wsgi", env, workers=1, health="/healthz", log=tmp_path / "server.log"
    ) as (base, _):
        yield base, relay, {"X-App-Id": merchant.app.app_id, "X-Api-Key": merchant.api_key}
    relay.cut()


def test_an_unreachable_database_answers_503_then_the_service_recovers_by_itself(
    relayed_server, card, member
):
    base, relay, headers = relayed_server
    earn = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "100"}
    assert call(base, "/cashback/earn", headers, earn)[0] == 200

    relay.cut()
    keyed = {**headers, "Idempotency-Key": "till-7-sale-2"}
    for path, body in (("/cashback/earn", earn), ("/cards", None)):
        status, response_headers, answer = call(base, path, keyed, body)
        assert (status, answer) == (503, error("service_unavailable"))
        assert response_headers["Retry-After"] == "1"

    relay.start()  # the database is back, on the same address
    status, _, answer = call(base, "/cashback/earn", keyed, earn)
    assert status == 200, answer
    status, replay_headers, replayed = call(base, "/cashback/earn", keyed, earn)
    assert replay_headers["Idempotent-Replayed"] == "true"
    assert replayed == answer
    assert LedgerEntry.objects.count() == 2
    assert sum(e.amount for e in LedgerEntry.objects.all()) == Decimal(10)


def test_a_connection_dropped_between_requests_is_replaced_before_the_next_one(
    relayed_server, card, member
):
    base, relay, headers = relayed_server
    earn = {"card_id": card.pk, "member_id": member.pk, "purchase_amount": "100"}
    assert call(base, "/cashback/earn", headers, earn)[0] == 200

    relay.cut()  # the server's kept connection is closed under it, with no request in flight
    relay.start()
    status, _, answer = call(base, "/cashback/earn", headers, earn)
    assert status == 200, answer
    assert LedgerEntry.objects.count() == 2
