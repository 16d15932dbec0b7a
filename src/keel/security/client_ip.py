"""The client's IP address, trusting proxy headers only from trusted proxies.

A request's ``X-Forwarded-For`` (or similar) header is written by whoever sent
it, so it is only believed when the TCP peer is a configured trusted proxy.
Each proxy appends the address it received the request from, so in a comma
list the rightmost entry that is not itself a trusted proxy is the first
address no trusted proxy can have forged. Parse configuration with
:func:`parse_networks` at start so a bad entry fails early.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(entries: Iterable[str]) -> list[Network]:
    """Networks from IPs or CIDR ranges, IPv4 or IPv6 (``"10.0.0.1"``, ``"fd00::/8"``).

    A bare IP is a single-address network. Host bits set in a CIDR range are
    accepted (``"10.0.0.1/8"`` means ``10.0.0.0/8``).

    Raises:
        ValueError: an entry is not an IP address or network; the message names it.
    """
    networks: list[Network] = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"invalid trusted proxy {entry!r}: {exc}") from exc
    return networks


def _parse_address(value: str) -> Address | None:
    value = value.strip()
    if value.startswith("[") and "]" in value:  # "[2001:db8::1]:443"
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:  # "203.0.113.7:443"
        value = value.partition(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    # An IPv4-mapped IPv6 peer ("::ffff:10.0.0.1") is the IPv4 address.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address, networks: Sequence[Network]) -> bool:
    return any(address in network for network in networks)


def client_ip(
    peer: str,
    headers: Mapping[str, str],
    trusted_proxies: Sequence[str | Network],
    proxy_headers: Sequence[str],
    use_leftmost: bool,
) -> str:
    """The IP address to attribute a request to (rate limits, logs, auth records).

    Args:
        peer: The TCP peer address of the connection.
        headers: The request headers; names are matched case-insensitively and
            repeated headers are joined into one comma list.
        trusted_proxies: IPs or CIDR networks (strings, or networks from
            :func:`parse_networks`) whose proxy headers are believed.
        proxy_headers: Header names to consult, in order; the first one present
            wins (e.g. ``X-Forwarded-For``, ``X-Real-IP``).
        use_leftmost: Take the leftmost entry of a comma list (the original
            client as claimed by the first hop, which the client can forge)
            instead of the rightmost address that is not a trusted proxy.

    Returns:
        The address from the proxy header when ``peer`` is a trusted proxy and
        the header yields a valid IP, else ``peer`` unchanged.

    Raises:
        ValueError: an entry of ``trusted_proxies`` is invalid.
    """
    networks = [p if isinstance(p, Network) else parse_networks([p])[0] for p in trusted_proxies]
    peer_address = _parse_address(peer)
    if peer_address is None or not networks or not _is_trusted(peer_address, networks):
        return peer
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        # Repeated headers (a multi-valued Mapping such as Starlette's) form one list.
        key = name.lower()
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    header = next((lowered[n.lower()] for n in proxy_headers if n.lower() in lowered), None)
    if header is None:
        return peer
    entries = [entry for entry in header.split(",") if entry.strip()]
    if not entries:
        return peer
    if use_leftmost:
        address = _parse_address(entries[0])
        return str(address) if address is not None else peer
    address = None
    for entry in reversed(entries):
        address = _parse_address(entry)
        if address is None:
            return peer  # a malformed hop: nothing to its left can be trusted
        if not _is_trusted(address, networks):
            return str(address)
    # Every hop is a trusted proxy: the leftmost one is the closest to the client.
    return str(address)
