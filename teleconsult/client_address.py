"""The client's address, as rate limits must see it.

Behind a reverse proxy every request comes from the proxy's address: limits keyed on it would
put every patient and clinician in one bucket. So when the peer is one of `trusted_proxies`,
the address comes from the header the proxy sets (`forwarded_header`: X-Forwarded-For, or
RFC 7239 Forwarded), read from the right: each trusted hop is skipped, the first address that
is not a trusted proxy is the client. Without a trusted peer the headers are ignored (anyone
can send them). Only the configured header is read: a proxy that sets X-Forwarded-For passes a
client's own Forwarded header through untouched.

Written here rather than taken from aiohttp-remotes: its strict mode answers 400 to any peer
outside the trusted list (a health check on the app's port, a host without a proxy) and fails
on a malformed entry, where we want the peer's address and to carry on.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

X_FORWARDED_FOR = "x-forwarded-for"
FORWARDED = "forwarded"
HEADERS = (X_FORWARDED_FOR, FORWARDED)
_FORWARDED_FOR = re.compile(r'(?:^|;)\s*for\s*=\s*("?)\[?([^\]";,]+)\]?(?::\d+)?\1\s*(?:;|$)', re.IGNORECASE)


def parse_networks(text: str) -> tuple[Network, ...]:
    """'127.0.0.1, 10.0.0.0/8, ::1' -> networks; ValueError names the bad entry."""
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(networks)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address, networks: Sequence[Network]) -> bool:
    return address is not None and any(address in network for network in networks)


def _hops(header: str, values: Iterable[str]) -> list[str]:
    """Addresses named by the header, leftmost (the original client) first."""
    hops: list[str] = []
    for value in values:
        for element in value.split(","):
            if header == X_FORWARDED_FOR:
                hops.append(element.strip())
            else:
                match = _FORWARDED_FOR.search(element)
                hops.append(match.group(2) if match else "")
    return hops


def client_address(peer: str | None, headers, networks: Sequence[Network], header: str) -> str:
    """The client's address for this request (see the module's docstring)."""
    peer_address = _address(peer or "")
    if peer_address is None:
        return peer or "unknown"
    if not _trusted(peer_address, networks):
        return str(peer_address)
    hops = _hops(header, headers.getall(header, ()))
    found = peer_address
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:  # a trusted proxy passed on something unreadable: stop at that proxy
            return str(found)
        found = address
        if not _trusted(address, networks):
            return str(address)
    return str(found)

