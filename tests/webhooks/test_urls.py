from __future__ import annotations

import pytest

from service.webhooks.urls import UrlRejected
from tests.webhooks.conftest import PUBLIC_IP, dev_guard, prod_guard

NAMES = {
    "hooks.example.com": [PUBLIC_IP, "2606:2800:220:1:248:1893:25c8:1946"],
    "receiver.internal": ["10.20.0.7"],
    "half-internal.example.com": [PUBLIC_IP, "10.0.0.5"],
    "metadata.example.com": ["169.254.169.254"],
    "localhost": ["127.0.0.1", "::1"],
}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks",
        "http://localhost:9000/x",
        "http://[::1]:8000/",
        "http://[::ffff:127.0.0.1]:8000/",
        "https://hooks.example.com/webhooks?source=ftm",
    ],
)
def test_dev_accepts_loopback_and_public_receivers(url: str) -> None:
    checked = dev_guard(NAMES).check(url)

    assert checked.url == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.com/x", "scheme_not_allowed"),
        ("javascript:alert(1)", "scheme_not_allowed"),
        ("http://user:secret@hooks.example.com/x", "userinfo_not_allowed"),
        ("http://@hooks.example.com/x", "userinfo_not_allowed"),
        ("http:///x", "host_required"),
        ("http://hooks.example.com:99999/", "invalid_url"),
        ("http://hooks.example.com/a b", "invalid_url"),
        ("http://[example.com]/", "invalid_url"),
        ("http://[::1%25eth0]/", "invalid_url"),
        ("http://bücher.example/", "invalid_url"),
        ("http://2130706433/", "noncanonical_ip"),
        ("http://0x7f000001/", "noncanonical_ip"),
        ("http://0177.0.0.1/", "noncanonical_ip"),
        ("http://127.1/", "noncanonical_ip"),
        ("http://169.254.169.254/latest/meta-data/", "address_denied"),
        ("http://[fd00:ec2::254]/", "address_denied"),
        ("http://[fe80::1]/", "address_denied"),
        ("http://0.0.0.0:8000/", "address_denied"),
        ("http://[::]/", "address_denied"),
        ("http://224.0.0.1/", "address_denied"),
        ("http://[::ffff:169.254.169.254]/", "address_denied"),
        ("http://metadata.example.com/", "address_denied"),
        ("http://10.1.2.3/x", "address_denied"),
        ("http://receiver.internal/x", "address_denied"),
        ("http://[fd00::1]/", "address_denied"),
        ("http://unknown.example.com/", "unresolvable"),
    ],
)
def test_dev_rejects_tricks_and_always_denied_addresses(url: str, reason: str) -> None:
    with pytest.raises(UrlRejected) as rejected:
        dev_guard(NAMES).check(url)

    assert rejected.value.reason == reason


def test_prod_accepts_https_to_a_host_with_only_public_addresses() -> None:
    checked = prod_guard(NAMES).check("https://hooks.example.com/webhooks")

    assert (checked.host, checked.port, len(checked.addresses)) == ("hooks.example.com", 443, 2)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "scheme_not_allowed"),
        ("https://127.0.0.1/", "address_denied"),
        ("https://[::1]/", "address_denied"),
        ("https://localhost/", "address_denied"),
        ("https://10.0.0.1/", "address_denied"),
        ("https://172.16.0.1/", "address_denied"),
        ("https://192.168.1.1/", "address_denied"),
        ("https://100.64.1.1/", "address_denied"),
        ("https://[fd00::1]/", "address_denied"),
        ("https://[::ffff:127.0.0.1]/", "address_denied"),
        ("https://[::ffff:93.184.216.34]/", "address_denied"),
        ("https://[64:ff9b::7f00:1]/", "address_denied"),
        ("https://[2002:7f00:1::]/", "address_denied"),
        ("https://receiver.internal/", "address_denied"),
        ("https://half-internal.example.com/", "address_denied"),
        ("https://2130706433/", "noncanonical_ip"),
        ("https://0x7f000001/", "noncanonical_ip"),
    ],
)
def test_prod_rejects_loopback_private_and_embedded_addresses(url: str, reason: str) -> None:
    with pytest.raises(UrlRejected) as rejected:
        prod_guard(NAMES).check(url)

    assert rejected.value.reason == reason


def test_a_dns_failure_rejects_the_url_in_prod_too() -> None:
    guard = prod_guard({})

    with pytest.raises(UrlRejected) as rejected:
        guard.check("https://hooks.example.com/x")

    assert rejected.value.reason == "unresolvable"
