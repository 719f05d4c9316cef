"""One POST to a checked destination, to an address the check allowed and no other: the name
is not resolved again between the check and the connection (no DNS rebinding), TLS still
verifies the certificate for the name, and the request carries the URL's own Host. Redirects
are not followed (an answer is an answer); the whole exchange has one deadline."""

import contextlib
import http.client
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from webhooks.destinations import Destination

USER_AGENT = "cashback-webhooks/1"


@dataclass(frozen=True)
class Answer:
    status: int


class SendFailed(Exception):
    """No answer: refused, unreachable, timed out, or not HTTP."""


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address, verifying the certificate for the name the URL gave."""

    def __init__(self, address: str, port: int, *, server_hostname: str, timeout: float):
        self._tls = ssl.create_default_context()
        super().__init__(address, port, timeout=timeout, context=self._tls)
        self._server_hostname = server_hostname

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=self._server_hostname)


def _connection(
    destination: Destination, address: str, timeout: float
) -> http.client.HTTPConnection:
    if urlsplit(destination.url).scheme == "https":
        return _PinnedHTTPSConnection(
            address, destination.port, server_hostname=destination.host, timeout=timeout
        )
    return http.client.HTTPConnection(address, destination.port, timeout=timeout)


def webhook_post(
    destination: Destination, *, body: str, headers: dict[str, str], timeout: float
) -> Answer:
    """POSTs `body` to the destination's URL, trying its checked addresses in turn until one
    connects. Raises `SendFailed` when none answers within `timeout` seconds in all."""
    parts = urlsplit(destination.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request_headers = {"Host": parts.netloc, "User-Agent": USER_AGENT, **headers}
    deadline = time.monotonic() + timeout
    errors = []
    for address in destination.addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        connection = _connection(destination, address, remaining)
        try:
            connection.connect()
        except OSError as exc:  # the next address, if the name has another
            connection.close()
            errors.append(f"{address}: {exc or type(exc).__name__}")
            continue
        # The socket timeout bounds each wait; this bounds them all together.
        timer = threading.Timer(max(deadline - time.monotonic(), 0), _cut, args=(connection,))
        timer.start()
        try:
            connection.request("POST", path, body=body.encode(), headers=request_headers)
            response = connection.getresponse()
            response.read(64 * 1024)  # the body is not used; a little is read politely
            return Answer(status=response.status)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            # ValueError: what the receiver answered, or the request as it must be written,
            # is no HTTP this client reads (UnicodeError among them).
            if time.monotonic() >= deadline:
                raise SendFailed(f"No answer within {timeout:g} s.") from exc
            raise SendFailed(f"{address}: {exc or type(exc).__name__}") from exc
        finally:
            timer.cancel()
            connection.close()
    raise SendFailed("; ".join(errors) or f"No answer within {timeout:g} s.")


def _cut(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
