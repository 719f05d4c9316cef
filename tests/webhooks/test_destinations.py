"""The guard against server-side request forgery: where a webhook may be delivered. Names are
resolved by a resolver the tests control, but for `localhost`, which the machine resolves."""

import ipaddress
import threading
import time

import pytest

from core.errors import InvalidInput
from webhooks import destinations
from webhooks.destinations import destination_check

NAMES = {
    "hooks.example.com": ["93.184.216.34"],
    "hooks6.example.com": ["2606:2800:220:1:248:1893:25c8:1946"],
    "internal.example.com": ["10.1.2.3"],
    "metadata.example.com": ["169.254.169.254"],
    "half.example.com": ["93.184.216.34", "192.168.1.20"],
    "sneaky.example.com": ["::ffff:127.0.0.1"],
    "shared.example.com": ["100.64.0.7"],
    "nat64.example.com": ["64:ff9b::a9fe:a9fe"],  # 169.254.169.254 through NAT64
    "sixtofour.example.com": ["2002:7f00:1::1"],  # 127.0.0.1 through 6to4
}


@pytest.fixture(autouse=True)
def resolver(monkeypatch):
    """Our names resolve as NAMES says, an address to itself, localhost as the machine says;
    any other name does not resolve."""
    real = destinations.resolve

    def resolve(host, port):
        if host in NAMES:
            return NAMES[host]
        if host == "localhost":
            return real(host, port)
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            raise OSError(f"{host} does not resolve") from None

    monkeypatch.setattr(destinations, "resolve", resolve)


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/cashback",  # live mode: https only
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://10.0.0.5/hook",
        "https://192.168.1.1/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fe80::1]/hook",
        "https://internal.example.com/hook",
        "https://metadata.example.com/hook",
        "https://half.example.com/hook",  # one private address is enough to refuse
        "https://sneaky.example.com/hook",  # IPv4-mapped loopback
        "https://shared.example.com/hook",  # carrier-grade NAT
        "https://nat64.example.com/hook",
        "https://sixtofour.example.com/hook",
        "https://nowhere.example.com/hook",  # does not resolve
        "https://user:secret@hooks.example.com/hook",
        "ftp://hooks.example.com/hook",
        "https:///hook",
        "https://hooks.example.com:99999/hook",
        "not a url",
    ],
)
def test_a_live_app_cannot_send_to(url):
    with pytest.raises(InvalidInput) as refused:
        destination_check(url, live=True)
    assert set(refused.value.details) == {"url"}


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("https://hooks.example.com/cashback", ("93.184.216.34",)),
        ("https://hooks6.example.com:8443/cashback", ("2606:2800:220:1:248:1893:25c8:1946",)),
        # A public IPv4 address reached through NAT64 or 6to4 is public.
        ("https://[64:ff9b::5db8:d822]/cashback", ("64:ff9b::5db8:d822",)),
        ("https://[2002:5db8:d822::1]/cashback", ("2002:5db8:d822::1",)),
    ],
)
def test_a_live_app_sends_to_public_https(url, addresses):
    destination = destination_check(url, live=True)
    assert destination.addresses == addresses


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000/hook", "http://localhost:9000/hook", "https://[::1]/hook"]
)
def test_a_test_app_may_use_http_and_loopback(url):
    destination = destination_check(url, live=False)
    assert destination.addresses


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://internal.example.com/hook",
        "http://half.example.com/hook",
    ],
)
def test_a_test_app_still_cannot_reach_private_or_link_local_addresses(url):
    with pytest.raises(InvalidInput):
        destination_check(url, live=False)


@pytest.mark.parametrize(
    ("address", "embedded"),
    [
        ("64:ff9b::7f00:1", "127.0.0.1"),  # NAT64, the well-known prefix (RFC 6052)
        ("64:ff9b::a00:5", "10.0.0.5"),
        ("64:ff9b::a9fe:a9fe", "169.254.169.254"),
        ("64:ff9b:1::7f00:1", "127.0.0.1"),  # NAT64, the local-use prefix (RFC 8215)
        ("::7f00:1", "127.0.0.1"),  # IPv4-compatible (deprecated)
        ("::ffff:0:7f00:1", "127.0.0.1"),  # IPv4-translated (SIIT)
        ("2002:7f00:1::", "127.0.0.1"),  # 6to4
        ("2002:a00:1::1", "10.0.0.1"),
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "127.0.0.1"),  # Teredo, its client
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "10.0.0.1"),
    ],
)
@pytest.mark.parametrize("live", [True, False])
def test_an_ipv6_address_that_embeds_an_internal_ipv4_address_is_refused(address, embedded, live):
    with pytest.raises(InvalidInput) as refused:
        destination_check(f"https://[{address}]/hook", live=live)
    [message] = refused.value.details["url"]
    assert embedded in message


@pytest.mark.parametrize(
    "address",
    [
        "fec0::1",  # site-local (deprecated, still routed inside some networks)
        "64:ff9b:1::5db8:d822",  # a local NAT64 translator, whatever it embeds
        "::5db8:d822",  # IPv4-compatible: deprecated, never a real destination
        "::ffff:0:5db8:d822",  # IPv4-translated: a local translator's
    ],
)
@pytest.mark.parametrize("live", [True, False])
def test_an_ipv6_address_of_a_local_or_deprecated_range_is_refused(address, live):
    with pytest.raises(InvalidInput):
        destination_check(f"https://[{address}]/hook", live=live)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/ho\tok",
        "https://hooks.exa\r\nmple.com/hook",
        "https://hooks.example.com/hook\n",
        "\x00https://hooks.example.com/hook",
        " https://hooks.example.com/hook",
        "https://hooks.example.com/a b",
        "https://hooks.example.com/\x7f",
        "https://hooks.example.com/\x85",  # a C1 control, next line
        "https://hooks.example.com/\u00a0",  # no-break space
        "https://hooks.example.com/\u2028",  # line separator
        "https://hooks.example.com/\u200b",  # zero-width space
    ],
)
@pytest.mark.parametrize("live", [True, False])
def test_a_url_with_whitespace_or_control_characters_anywhere_is_refused(url, live):
    with pytest.raises(InvalidInput) as refused:
        destination_check(url, live=live)
    assert set(refused.value.details) == {"url"}


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9000/hook", "http://localhost:9000/hook", "https://[::1]/hook"]
)
def test_a_test_app_may_not_use_loopback_where_loopback_is_not_allowed(settings, url):
    settings.CASHBACK_WEBHOOK_ALLOW_LOOPBACK = False
    with pytest.raises(InvalidInput) as refused:
        destination_check(url, live=False)
    [message] = refused.value.details["url"]
    assert message.endswith("webhooks go to a public address only.")


def test_an_ip_literal_is_not_resolved(monkeypatch):
    def resolve(host, port):
        raise AssertionError(f"{host} was resolved")

    monkeypatch.setattr(destinations, "resolve", resolve)
    assert destination_check("https://93.184.216.34/hook", live=True).addresses == (
        "93.184.216.34",
    )
    assert destination_check("https://[2606:2800:220:1::1]/hook", live=True).addresses == (
        "2606:2800:220:1::1",
    )


@pytest.fixture
def stuck_resolver(monkeypatch):
    """A resolver that answers only once the test is over (or after 3 s); returns how many
    lookups it was asked for."""
    released = threading.Event()
    asked = []

    def resolve(host, port):
        asked.append(host)
        released.wait(3)
        return ["93.184.216.34"]

    monkeypatch.setattr(destinations, "resolve", resolve)
    yield asked
    released.set()
    for thread in threading.enumerate():
        if thread.name.startswith("webhook-resolve"):
            thread.join(3)


def test_a_name_that_does_not_resolve_in_time_is_refused(settings, stuck_resolver):
    settings.WEBHOOK_RESOLVE_TIMEOUT_SECONDS = 0.2
    started = time.monotonic()
    with pytest.raises(InvalidInput) as refused:
        destination_check("https://hooks.example.com/hook", live=True)
    assert time.monotonic() - started < 1
    assert refused.value.details == {
        "url": ["The host hooks.example.com does not resolve in time."]
    }


def test_stuck_lookups_hold_a_bounded_number_of_threads(settings, stuck_resolver):
    settings.WEBHOOK_RESOLVE_TIMEOUT_SECONDS = 0.05
    started = time.monotonic()
    outcomes = []
    for n in range(3 * destinations.RESOLVER_THREADS):
        with pytest.raises((InvalidInput, destinations.ResolverBusy)) as refused:
            destination_check(f"https://host{n}.example.com/hook", live=True)
        outcomes.append(type(refused.value))
    assert time.monotonic() - started < 3
    resolving = [t for t in threading.enumerate() if t.name.startswith("webhook-resolve")]
    assert len(resolving) <= destinations.RESOLVER_THREADS
    # Lookups that found no thread free were never started, and say so: the host's fault or not
    # is not known (503 at registration; a delivery waits without an attempt counted).
    assert len(stuck_resolver) == destinations.RESOLVER_THREADS
    assert outcomes == [InvalidInput] * destinations.RESOLVER_THREADS + [
        destinations.ResolverBusy
    ] * (2 * destinations.RESOLVER_THREADS)


def test_a_host_that_hangs_is_looked_up_once_however_many_ask(settings, stuck_resolver):
    settings.WEBHOOK_RESOLVE_TIMEOUT_SECONDS = 0.05
    for _ in range(10):
        with pytest.raises(InvalidInput):
            destination_check("https://slow.example.com/hook", live=True)
    assert stuck_resolver == ["slow.example.com"]
    # Another host still has a thread.
    with pytest.raises(InvalidInput):
        destination_check("https://other.example.com/hook", live=True)
    assert stuck_resolver == ["slow.example.com", "other.example.com"]


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/café", "https://bücher.example/hook", "https://h.example/?q=é"],
)
def test_a_url_that_is_not_ascii_is_refused_as_written(url):
    with pytest.raises(InvalidInput) as refused:
        destination_check(url, live=True)
    assert refused.value.details == {
        "url": [
            "The URL must be ASCII: percent-encode its path and query, and write an "
            "international host name in its ASCII (xn--) form."
        ]
    }
