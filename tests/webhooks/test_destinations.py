"""The guard against server-side request forgery: where a webhook may be delivered. Names are
resolved by a resolver the tests control, but for `localhost`, which the machine resolves."""

import ipaddress

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
