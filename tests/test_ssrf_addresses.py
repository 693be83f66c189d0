"""The SSRF guard for entry links: an IPv6 address that carries a non-global IPv4 address (NAT64, 6to4,
IPv4-translated, IPv4-compatible, IPv4-mapped, Teredo) is refused like the IPv4 address itself, since a
translator or the host's stack delivers it there. Public addresses stay allowed, also IPv4-mapped, -compatible,
-translated or behind NAT64; 6to4 (2002::/16) is refused whatever it carries, as current `ipaddress` releases
count it not global, so the guard does not depend on the interpreter's patch level."""
from __future__ import annotations

import ipaddress

import pytest

from pipeline.feeds import fetch_page, non_public_address
from transforms.feedsafety import embedded_ipv4, non_global_reason

REFUSED = {
    "64:ff9b::7f00:1": "NAT64 (well-known prefix) of 127.0.0.1",
    "64:ff9b::a9fe:a9fe": "NAT64 of the cloud metadata address 169.254.169.254",
    "64:ff9b:1::808:808": "the local-use NAT64 prefix (RFC 8215), even for a public IPv4 address",
    "2002:7f00:1::": "6to4 of 127.0.0.1",
    "2002:a00:1::1": "6to4 of 10.0.0.1",
    "::ffff:0:127.0.0.1": "IPv4-translated (SIIT) 127.0.0.1",
    "::127.0.0.1": "IPv4-compatible 127.0.0.1",
    "::10.1.2.3": "IPv4-compatible 10.1.2.3",
    "::ffff:127.0.0.1": "IPv4-mapped 127.0.0.1",
    "::ffff:169.254.169.254": "IPv4-mapped metadata address",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo (2001::/32 is not global)",
    "::1": "loopback",
    "::": "unspecified",
    "fc00::1": "unique local",
    "2002:808:808::1": "6to4 even of a public IPv4 address (not global in current ipaddress releases)",
    "3fff::1": "the documentation prefix of RFC 9637",
}
ALLOWED = ["93.184.216.34", "8.8.8.8", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:8.8.8.8",
           "64:ff9b::808:808", "::8.8.8.8", "::ffff:0:8.8.8.8"]


@pytest.mark.parametrize("address", sorted(REFUSED), ids=lambda a: REFUSED[a])
def test_an_address_carrying_a_non_global_ipv4_address_is_refused(address):
    assert non_global_reason(ipaddress.ip_address(address)) is not None
    assert non_public_address(address) == str(ipaddress.ip_address(address))
    assert non_public_address(f"[{address}]") is not None  # as urlsplit leaves a bracketed host


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_stay_allowed_in_every_spelling(address):
    assert non_global_reason(ipaddress.ip_address(address)) is None
    assert non_public_address(address) is None


@pytest.mark.parametrize("address, form, v4", [
    ("64:ff9b::7f00:1", "NAT64", "127.0.0.1"), ("64:ff9b:1::7f00:1", "NAT64", "127.0.0.1"),
    ("2002:7f00:1::", "6to4", "127.0.0.1"), ("::ffff:0:127.0.0.1", "IPv4-translated", "127.0.0.1"),
    ("::127.0.0.1", "IPv4-compatible", "127.0.0.1"), ("::ffff:127.0.0.1", "IPv4-mapped", "127.0.0.1"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo client", "192.0.2.45"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo server", "65.54.227.120"),
])
def test_the_embedded_ipv4_address_is_found(address, form, v4):
    assert (form, ipaddress.IPv4Address(v4)) in embedded_ipv4(ipaddress.ip_address(address))


@pytest.mark.parametrize("address, form", [("64:ff9b::7f00:1", "NAT64"), ("2002:7f00:1::", "6to4")])
def test_the_reason_names_the_embedded_address(address, form):
    reason = non_global_reason(ipaddress.ip_address(address))
    assert reason is not None and "127.0.0.1" in reason and form in reason


@pytest.mark.parametrize("address", ["64:ff9b::7f00:1", "2002:7f00:1::", "::ffff:0:127.0.0.1", "::127.0.0.1"])
def test_an_entry_link_to_such_an_address_is_refused_before_any_connection(address):
    """The real fetch path: the refusal, not a connection error, is the outcome (no request is made)."""
    result = fetch_page(f"http://[{address}]:9/article", retries=0, connect_timeout=2)
    assert result.data is None and "non-public address" in (result.error or ""), result.error
