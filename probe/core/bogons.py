"""IANA special-purpose address ranges: an answer in one of them is a bogon.

A resolver that answers a public name with a bogon (127.0.0.1, 10.0.0.0/8, ...) is, unless the
site is misconfigured, lying; OONI flags it but does not call it blocking by itself, and neither
do we. Source: IANA IPv4 and IPv6 Special-Purpose Address Registries.
"""

from __future__ import annotations

import ipaddress
from typing import Final

_V4: Final = (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
    "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24",
    "192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4", "255.255.255.255/32",
)
_V6: Final = (
    "::/128", "::1/128", "::ffff:0:0/96", "64:ff9b:1::/48", "100::/64", "2001::/23",
    "2001:db8::/32", "2002::/16", "3fff::/20", "5f00::/16", "fc00::/7", "fe80::/10",
    "ff00::/8",
)
BOGON_NETWORKS: Final = tuple(ipaddress.ip_network(n) for n in _V4 + _V6)


def is_bogon(address: str) -> bool:
    """True if ``address`` is in an IANA special-purpose range (or is not an address at all)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in BOGON_NETWORKS if net.version == ip.version)


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


LOOPBACK, PRIVATE, GLOBAL = "loopback", "private", "global"


def scope(address: str) -> str:
    """``loopback``, ``private`` (any address that is not globally routable: RFC 1918, link-local,
    unique-local, shared CGNAT space, documentation, ...) or ``global``; not an address is
    ``private``, the cautious answer. IPv4-mapped IPv6 addresses count as their IPv4 address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return PRIVATE
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return LOOPBACK
    if ip.is_global and not ip.is_multicast:
        return GLOBAL
    return PRIVATE


def redirect_allowed(address: str, start_scopes: frozenset[str]) -> bool:
    """Whether a redirect may lead to ``address``, given the scopes of the starting URL's
    dialled addresses: a global address always, loopback or private space only when the
    starting URL was itself there (a lab or a private deployment)."""
    where = scope(address)
    return where == GLOBAL or where in start_scopes
