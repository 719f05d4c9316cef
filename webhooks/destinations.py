"""Where a webhook may be delivered: the guard against server-side request forgery.

A live-mode app's endpoint must be `https` and every address its name resolves to must be a
public one (not loopback, private, link-local, shared, reserved or multicast; an IPv6 address
that carries an IPv4 one, such as NAT64, 6to4 or Teredo, must be public and carry a public one),
checked when the endpoint is registered and again before each delivery, which then connects to
an address checked. A test-mode app may also use `http`, and loopback where
`CASHBACK_WEBHOOK_ALLOW_LOOPBACK` is on (a receiver on the developer's machine; never on a
production worker host, whose own ports are no one's to post to). The name is looked up within
`WEBHOOK_RESOLVE_TIMEOUT_SECONDS`.
"""

import ipaddress
import os
import socket
import threading
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from django.conf import settings

from core.errors import InvalidInput, ServiceUnavailable

DEFAULT_PORTS = {"http": 80, "https": 443}
# Lookups in flight at once in one process. The system's resolver cannot be interrupted, so a
# lookup that outlives its timeout keeps its thread until the resolver gives up: this bounds
# those threads. One host is looked up once at a time, so one app's endpoints hold at most
# CASHBACK_WEBHOOK_ENDPOINTS_PER_APP of them; a lookup that finds none free is not the
# endpoint's failure (`ResolverBusy`).
RESOLVER_THREADS = 32

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 ranges whose last 32 bits are an IPv4 address: NAT64 with the well-known prefix (RFC
# 6052) and a local one (RFC 8215, which may also place it elsewhere: that range is refused
# whole, below), IPv4-compatible (RFC 4291, deprecated) and IPv4-translated (RFC 2765)
# addresses. IPv4-mapped, 6to4 and Teredo addresses the standard library reads itself.
_LAST_32_BITS_IPV4 = tuple(
    ipaddress.IPv6Network(network)
    for network in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96")
)
# Never a webhook's destination, although Python's tables call some of them global: a local
# NAT64 translator, the deprecated IPv4-compatible and site-local ranges, IPv4-translated
# addresses (a local translator's) and Teredo (a tunnel through some client's NAT).
_NEVER_PUBLIC = tuple(
    ipaddress.IPv6Network(network)
    for network in ("64:ff9b:1::/48", "::/96", "::ffff:0:0:0/96", "fec0::/10", "2001::/32")
)


@dataclass(frozen=True)
class Destination:
    url: str
    host: str
    port: int
    addresses: tuple[str, ...]  # every address the host resolved to, each allowed


def resolve(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (the system's resolver; tests put their own here)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


class _ResolveTimeout(Exception):
    pass


class ResolverBusy(ServiceUnavailable):
    """Every lookup thread of this process is held by lookups still stuck: the host could not be
    looked up, which says nothing of the endpoint (503 at registration; a delivery waits)."""

    default_message = "The service cannot look up the URL's host right now; retry shortly."

    def __init__(self) -> None:
        super().__init__(retry_after=1)


@dataclass
class _Lookup:
    """One lookup in flight, which every caller asking for the same host and port waits on."""

    done: threading.Event = field(default_factory=threading.Event)
    addresses: list[str] | None = None
    error: BaseException | None = None


_lookups_lock = threading.Lock()
_lookups: dict[tuple[str, int], _Lookup] = {}
_lookup_slots = threading.BoundedSemaphore(RESOLVER_THREADS)


def _reset_lookups() -> None:
    # A forked child has none of its parent's threads, so none of their lookups or slots.
    global _lookup_slots, _lookups_lock
    _lookup_slots = threading.BoundedSemaphore(RESOLVER_THREADS)
    _lookups_lock = threading.Lock()
    _lookups.clear()


os.register_at_fork(after_in_child=_reset_lookups)


def _resolve_in_time(host: str, port: int, timeout: float) -> list[str]:
    """`resolve(host, port)` on a thread of its own, abandoned (not stopped) after `timeout`
    seconds: raises `_ResolveTimeout` then, or what `resolve` raised. Callers asking for a host
    being looked up wait on that lookup rather than start another, so that a name that hangs
    holds one thread however many endpoints use it. Raises `ResolverBusy` when no thread is free
    for a new lookup."""
    key = (host, port)
    with _lookups_lock:
        pending = _lookups.get(key)
        started = pending is None
        if pending is None:
            if not _lookup_slots.acquire(blocking=False):
                raise ResolverBusy()
            pending = _lookups[key] = _Lookup()
    lookup = pending
    if started:
        slots = _lookup_slots

        def run() -> None:
            try:
                lookup.addresses = resolve(host, port)
            except BaseException as exc:  # handed to whoever still waits
                lookup.error = exc
            finally:
                with _lookups_lock:
                    _lookups.pop(key, None)
                slots.release()
                lookup.done.set()

        # A daemon thread: a lookup still stuck does not hold up the process's exit.
        thread = threading.Thread(target=run, name=f"webhook-resolve {host}", daemon=True)
        try:
            thread.start()
        except RuntimeError:  # no thread to be had: nothing holds the slot or the lookup
            with _lookups_lock:
                _lookups.pop(key, None)
            slots.release()
            raise ResolverBusy() from None
    if not lookup.done.wait(timeout):
        raise _ResolveTimeout
    if lookup.error is not None:
        raise lookup.error
    return list(lookup.addresses or [])


def _refused(message: str) -> InvalidInput:
    return InvalidInput(message, details={"url": [message]})


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries, which a packet to it may end up at."""
    embedded = []
    if ip.sixtofour is not None:
        embedded.append(ip.sixtofour)
    if ip.teredo is not None:
        embedded.extend(ip.teredo)  # the Teredo server's and the client's
    special = ip.is_loopback or ip.is_unspecified  # ::1 and :: carry no IPv4 address
    if not special and any(ip in network for network in _LAST_32_BITS_IPV4):
        embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return embedded


def _public(ip: IPAddress) -> bool:
    if not ip.is_global or ip.is_multicast:
        return False
    return not (isinstance(ip, ipaddress.IPv6Address) and any(ip in n for n in _NEVER_PUBLIC))


def _refusal(address: str, *, loopback: bool) -> str | None:
    """Why `address` is no destination (None: it is one). `loopback`: loopback is allowed."""
    ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # the IPv4 address itself, written as IPv6
    if loopback and ip.is_loopback:
        return None
    embedded = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else []
    inner = [str(v4) for v4 in embedded if not _public(v4)]
    if inner:
        return f"{address} (which carries {', '.join(inner)})"
    return None if _public(ip) else address


def _text_refusal(url: str) -> str | None:
    """Why the URL's text is refused as written (None: it is not). `urlsplit` drops tabs and
    line breaks and trims controls and spaces, so the URL checked would not be the URL kept;
    and a request line or Host header holds ASCII only, so a URL that is not would never be
    sent."""
    if any(c.isspace() or unicodedata.category(c) in ("Cc", "Cf") for c in url):
        return "The URL may not contain spaces, line breaks or control characters."
    if not url.isascii():
        return (
            "The URL must be ASCII: percent-encode its path and query, and write an "
            "international host name in its ASCII (xn--) form."
        )
    authority = url.partition("//")[2]
    for end in "/?#":
        authority = authority.partition(end)[0]
    if "@" in authority:  # user info, which would also go out in the Host header
        return "The URL must name a host, without a user name or password."
    return None


def destination_check(url: str, *, live: bool) -> Destination:
    """The endpoint `url` resolved and checked. Raises `InvalidInput` (400, on `url`) when it is
    not a URL this app may send to, or its host does not resolve within
    `WEBHOOK_RESOLVE_TIMEOUT_SECONDS`."""
    text_refusal = _text_refusal(url)
    if text_refusal:
        raise _refused(text_refusal)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refused("Not a valid URL.") from None
    schemes = ("https",) if live else ("https", "http")
    if parts.scheme not in schemes:
        raise _refused(f"The URL must start with {' or '.join(f'{s}://' for s in schemes)}.")
    if not parts.hostname:
        raise _refused("The URL must name a host.")
    host, port = parts.hostname, port or DEFAULT_PORTS[parts.scheme]
    try:
        addresses = [str(ipaddress.ip_address(host))]  # an address needs no lookup
    except ValueError:
        try:
            addresses = _resolve_in_time(host, port, settings.WEBHOOK_RESOLVE_TIMEOUT_SECONDS)
        except _ResolveTimeout:
            raise _refused(f"The host {host} does not resolve in time.") from None
        except (OSError, UnicodeError):
            raise _refused(f"The host {host} does not resolve.") from None
    if not addresses:
        raise _refused(f"The host {host} does not resolve.")
    loopback = not live and settings.CASHBACK_WEBHOOK_ALLOW_LOOPBACK
    refusals = [r for r in (_refusal(a, loopback=loopback) for a in addresses) if r]
    if refusals:
        where = "a public or loopback address" if loopback else "a public address"
        raise _refused(
            f"The host {host} resolves to {', '.join(refusals)}: webhooks go to {where} only."
        )
    return Destination(url=url, host=host, port=port, addresses=tuple(addresses))
