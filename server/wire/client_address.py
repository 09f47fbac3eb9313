"""Who the client is: the TCP peer, or the address a trusted proxy reports (pure).

Behind a reverse proxy every connection comes from the proxy, so limits
keyed on the peer would throttle every user together. When the peer is one
of the operator's trusted proxies (--trusted-proxies), X-Forwarded-For is
read from the right: the right-most entry that is not itself a trusted
proxy is the client. Entries left of it were written by the client (or
proxies we do not know) and are never believed. A malformed entry on the
way there makes us fall back to the peer: we cannot tell who sent it.

Per-address limits count IPv6 addresses by their /64: one end site usually
gets a whole /64, so counting single addresses would give it 2^64 tries.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: The prefix length IPv6 addresses are counted by.
IPV6_LIMIT_PREFIX = 64


def parse_networks(spec: str) -> tuple[Network, ...]:
    """`10.0.0.0/8,::1/128` -> networks; ValueError naming a bad entry."""
    networks: list[Network] = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an address or CIDR network") from None
    return tuple(networks)


def parse_address(text: str) -> Address | None:
    """An address as a peer or an X-Forwarded-For entry writes it, else None.

    Accepts `1.2.3.4`, `1.2.3.4:port`, `2001:db8::1`, `[2001:db8::1]` and
    `[2001:db8::1]:port`; an IPv4-mapped IPv6 address is its IPv4 address.
    """
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        text = host
    elif text.count(":") == 1:  # IPv4 with a port
        text, _, port = text.partition(":")
        if not port.isdigit():
            return None
    if "%" in text:  # a zone id names no client
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, networks: Iterable[Network]) -> bool:
    return any(address.version == net.version and address in net for net in networks)


def client_address(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str:
    """The client's address, as text.

    `forwarded_for` holds every X-Forwarded-For header of the request, in
    order; several headers read as one comma-separated list.
    """
    address = parse_address(peer) if peer else None
    if address is None:
        return peer or "unknown"
    if not trusted or not _trusted(address, trusted):
        return str(address)
    entries = [entry for header in forwarded_for for entry in header.split(",")]
    found = address
    for entry in reversed(entries):
        hop = parse_address(entry)
        if hop is None:
            return str(address)  # malformed: nobody we trust wrote it like this
        found = hop
        if not _trusted(hop, trusted):
            return str(hop)
    # Every hop is a trusted proxy: the furthest one is the best we know.
    return str(found)


def limit_key(address: str) -> str:
    """What per-address limits count `address` as: itself, or its IPv6 /64."""
    parsed = parse_address(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        net = ipaddress.IPv6Network((parsed, IPV6_LIMIT_PREFIX), strict=False)
        return str(net)
    return str(parsed) if parsed is not None else address


def allowed(address: str, networks: Sequence[Network]) -> bool:
    """Whether `address` (a client address) is in one of `networks`."""
    parsed = parse_address(address)
    return parsed is not None and _trusted(parsed, networks)
