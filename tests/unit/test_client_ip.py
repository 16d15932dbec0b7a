"""Client IP resolution behind trusted proxies, including spoofing attempts."""

from __future__ import annotations

import ipaddress

import pytest

from keel.security.client_ip import client_ip, parse_networks

PROXIES = ["10.0.0.0/8", "192.168.1.5", "fd00::/8"]
HEADERS = ["X-Forwarded-For", "X-Real-IP"]
XFF = "X-Forwarded-For"


def resolve(peer: str, headers: dict[str, str], use_leftmost: bool = False) -> str:
    return client_ip(peer, headers, PROXIES, HEADERS, use_leftmost)


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        # No proxy involved.
        ("203.0.113.7", {}, "203.0.113.7"),
        # Spoofing: an untrusted peer's headers are ignored.
        ("203.0.113.7", {XFF: "1.2.3.4"}, "203.0.113.7"),
        ("203.0.113.7", {"X-Real-IP": "1.2.3.4"}, "203.0.113.7"),
        ("10.0.0.2.evil", {XFF: "1.2.3.4"}, "10.0.0.2.evil"),
        # A trusted proxy's header is believed.
        ("10.1.2.3", {XFF: "198.51.100.9"}, "198.51.100.9"),
        ("192.168.1.5", {XFF: "198.51.100.9"}, "198.51.100.9"),
        ("10.1.2.3", {"X-Real-IP": "198.51.100.9"}, "198.51.100.9"),
        ("fd00::1", {XFF: "2001:db8::7"}, "2001:db8::7"),
        ("::ffff:10.1.2.3", {XFF: "198.51.100.9"}, "198.51.100.9"),
        # Trusted peer without a proxy header: the peer itself.
        ("10.1.2.3", {}, "10.1.2.3"),
        # Header names are case-insensitive.
        ("10.1.2.3", {"x-forwarded-for": "198.51.100.9"}, "198.51.100.9"),
        # The first configured header present wins.
        ("10.1.2.3", {"X-Real-IP": "198.51.100.1", XFF: "198.51.100.2"}, "198.51.100.2"),
        # Spoofing: a forged leftmost entry is ignored; the rightmost untrusted hop wins.
        ("10.1.2.3", {XFF: "1.1.1.1, 198.51.100.9"}, "198.51.100.9"),
        ("10.1.2.3", {XFF: "1.1.1.1, 198.51.100.9, 10.9.9.9, 192.168.1.5"}, "198.51.100.9"),
        # Every hop trusted: the leftmost, closest to the client.
        ("10.1.2.3", {XFF: "10.0.0.9, 10.0.0.8"}, "10.0.0.9"),
        # Invalid addresses fall back to the peer.
        ("10.1.2.3", {XFF: "not-an-ip"}, "10.1.2.3"),
        ("10.1.2.3", {XFF: "1.1.1.1, garbage"}, "10.1.2.3"),
        ("10.1.2.3", {XFF: " , "}, "10.1.2.3"),
        ("10.1.2.3", {"X-Real-IP": "999.1.1.1"}, "10.1.2.3"),
        # Ports and brackets around addresses are tolerated.
        ("10.1.2.3", {XFF: "198.51.100.9:5120"}, "198.51.100.9"),
        ("10.1.2.3", {XFF: "[2001:db8::7]:443"}, "2001:db8::7"),
    ],
)
def test_client_ip_rightmost(peer: str, headers: dict[str, str], expected: str) -> None:
    """Proxy headers count only from trusted peers; the rightmost untrusted hop wins."""
    assert expected == resolve(peer, headers)


@pytest.mark.parametrize(
    ("peer", "headers", "expected"),
    [
        ("10.1.2.3", {XFF: "1.1.1.1, 198.51.100.9"}, "1.1.1.1"),
        ("10.1.2.3", {XFF: "garbage, 198.51.100.9"}, "10.1.2.3"),
        # Even with use_leftmost an untrusted peer's header is ignored.
        ("203.0.113.7", {XFF: "1.1.1.1, 198.51.100.9"}, "203.0.113.7"),
    ],
)
def test_client_ip_leftmost(peer: str, headers: dict[str, str], expected: str) -> None:
    """With use_leftmost the first entry is taken, still only from trusted peers."""
    assert expected == resolve(peer, headers, use_leftmost=True)


def test_no_trusted_proxies_ignores_headers() -> None:
    """Without trusted proxies every header is ignored, even from private peers."""
    assert "10.1.2.3" == client_ip("10.1.2.3", {XFF: "1.1.1.1"}, [], HEADERS, False)


def test_repeated_headers_form_one_list() -> None:
    """A header sent twice counts as one comma list, client's copy first."""

    class MultiHeaders(dict[str, str]):
        def items(self) -> list[tuple[str, str]]:  # type: ignore[override]  # multi-valued
            return [(XFF, "1.1.1.1"), ("x-forwarded-for", "198.51.100.9")]

    assert "198.51.100.9" == client_ip("10.1.2.3", MultiHeaders(), PROXIES, HEADERS, False)


def test_pre_parsed_networks_are_accepted() -> None:
    """Networks from parse_networks can be passed instead of strings."""
    networks = parse_networks(PROXIES)

    assert "198.51.100.9" == client_ip("10.1.2.3", {XFF: "198.51.100.9"}, networks, HEADERS, False)


def test_parse_networks() -> None:
    """IPs and CIDR ranges, v4 and v6, parse to networks; host bits are tolerated."""
    expected = [
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("192.168.1.5/32"),
        ipaddress.ip_network("2001:db8::/32"),
        ipaddress.ip_network("::1/128"),
    ]

    assert expected == parse_networks(["10.1.2.3/8", " 192.168.1.5 ", "2001:db8::/32", "::1"])


@pytest.mark.parametrize("entry", ["", "localhost", "10.0.0.0/33", "1.2.3", "fd00::/129"])
def test_parse_networks_rejects_invalid_entries(entry: str) -> None:
    """An invalid trusted proxy entry is a ValueError naming the entry."""
    with pytest.raises(ValueError, match="invalid trusted proxy"):
        parse_networks(["10.0.0.1", entry])


def test_client_ip_rejects_invalid_trusted_proxy() -> None:
    """An invalid trusted proxy given as a string fails loudly, not silently."""
    with pytest.raises(ValueError, match="nope"):
        client_ip("10.1.2.3", {}, ["nope"], HEADERS, False)
