"""Where a webhook may be delivered: the guard against server-side request forgery.

A live-mode app's endpoint must be `https` and every address its name resolves to must be a
public one (not loopback, private, link-local, shared, reserved or multicast), checked when the
endpoint is registered and again before each delivery, which then connects to an address
checked. A test-mode app may also use `http` and loopback, for a receiver on the developer's
machine.
"""

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from core.errors import InvalidInput

DEFAULT_PORTS = {"http": 80, "https": 443}


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


def _refused(message: str) -> InvalidInput:
    return InvalidInput(message, details={"url": [message]})


def _allowed(address: str, *, live: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_global and not ip.is_multicast:
        return True
    return not live and ip.is_loopback


def destination_check(url: str, *, live: bool) -> Destination:
    """The endpoint `url` resolved and checked. Raises `InvalidInput` (400, on `url`) when it is
    not a URL this app may send to."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refused("Not a valid URL.") from None
    schemes = ("https",) if live else ("https", "http")
    if parts.scheme not in schemes:
        raise _refused(f"The URL must start with {' or '.join(f'{s}://' for s in schemes)}.")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise _refused("The URL must name a host, without a user name or password.")
    host, port = parts.hostname, port or DEFAULT_PORTS[parts.scheme]
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError):
        raise _refused(f"The host {host} does not resolve.") from None
    if not addresses:
        raise _refused(f"The host {host} does not resolve.")
    refused = [address for address in addresses if not _allowed(address, live=live)]
    if refused:
        where = "a public address" if live else "a public or loopback address"
        raise _refused(
            f"The host {host} resolves to {', '.join(refused)}: webhooks go to {where} only."
        )
    return Destination(url=url, host=host, port=port, addresses=tuple(addresses))
