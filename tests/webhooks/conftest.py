"""Real parts for the delivery tests: HTTP receivers on loopback threads, and `manage.py
worker` in a subprocess on the test database."""

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    path: str


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that answers POSTs with the statuses in `answers`, in turn
    (then 200), and keeps what it was sent. `hold` (an Event): the first request is held open
    until it is set."""

    answers: list[int] = field(default_factory=list)
    hold: threading.Event | None = None
    received: list[Received] = field(default_factory=list)
    port: int = 0

    def start(self, port: int = 0) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                first = not receiver.received
                receiver.received.append(
                    Received({k.lower(): v for k, v in self.headers.items()}, body, self.path)
                )
                if first and receiver.hold is not None:
                    receiver.hold.wait(30)
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self.hold is not None:
            self.hold.set()
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/cashback"


@pytest.fixture
def make_receiver():
    started: list[Receiver] = []

    def make(**kwargs) -> Receiver:
        port = kwargs.pop("port", 0)
        receiver = Receiver(**kwargs).start(port)
        started.append(receiver)
        return receiver

    yield make
    for receiver in started:
        receiver.stop()


@pytest.fixture
def receiver(make_receiver) -> Receiver:
    return make_receiver()


def wait_until(condition, timeout: float = 15, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# Quick settings for the worker under test: it polls, beats and recovers in about a second,
# and retries after a fraction of a second.
FAST_WORKER = {
    "WORKER_POLL_SECONDS": "0.2",
    "WORKER_HEARTBEAT_SECONDS": "0.5",
    "WORKER_STALLED_SECONDS": "2",
    "WORKER_RECOVERY_SECONDS": "1",
    "WEBHOOK_RETRY_BASE_SECONDS": "0.2",
    "WEBHOOK_RETRY_MAX_SECONDS": "0.5",
}


@pytest.fixture
def queue_emptied_after(transactional_db):
    """Committed jobs are removed after the test: the flush between tests leaves the queue's
    tables, which Django does not manage."""
    yield
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs, "
            "procrastinate_workers CASCADE"
        )


@pytest.fixture
def start_worker(queue_emptied_after, tmp_path):
    """Starts `python manage.py worker` on the test database; returns the process. Workers
    still running at the end are stopped."""
    params = connection.get_connection_params()
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{params['user']}@/{params['dbname']}",
        "PGHOST": str(params.get("host") or "127.0.0.1"),
        "PGPORT": str(params.get("port") or 5432),
        "DEBUG": "true",
        "LOG_FORMAT": "plain",
        **FAST_WORKER,
    }
    processes: list[subprocess.Popen] = []

    def start(**settings: str) -> subprocess.Popen:
        log_path = tmp_path / f"worker-{len(processes)}.log"
        log = open(log_path, "w")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "manage.py", "worker"],
            cwd=ROOT,
            env={**env, **settings},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        process.log_path = log_path  # type: ignore[attr-defined]
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
