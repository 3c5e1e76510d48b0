"""The probe's way out to the collector through a proxy: HTTP CONNECT or SOCKS5 (a local Tor).

When a censor blocks the collector and its control by name and address, a volunteer with Tor
(or another SOCKS5 or HTTP CONNECT proxy) can still report. ``collector.proxy`` names it:

* ``http://HOST:PORT``: an HTTP CONNECT proxy (aiohttp's own ``proxy=`` per request);
* ``socks5h://HOST:PORT``: SOCKS5, the collector's name resolved by the proxy (Tor's
  ``SocksPort``, normally ``socks5h://127.0.0.1:9050``): no DNS query for the collector leaves
  the volunteer's machine, which is what Tor needs;
* ``socks5://HOST:PORT``: SOCKS5 with the name resolved here first (curl's meaning).

Only the probe's own traffic to the collector goes through it (uploads, heartbeats, target
lists, control requests); measurements of sites never do, or they would measure the proxy's
network instead of the volunteer's.

SOCKS5 comes from ``aiohttp-socks`` (a connector: every request of the session goes through
the proxy); HTTP CONNECT stays a per-request option. ``path_of`` names the way a request
took, for the measurements and heartbeats (never an address): ``direct``, ``front``,
``http_proxy``, ``http_proxy+front`` or ``socks5``.

Through SOCKS5 (``probe.daemon.endpoints.route``) a CDN-fronted endpoint is reached at its own
name, its front unused: the proxy (Tor) already hides the destination from the volunteer's
network, which is what the front is for, and the SOCKS5 connector checks TLS against the
URL's host, not a separate server name.
"""

from __future__ import annotations

import re
import ssl
from typing import Any, Literal

import aiohttp

ProxyKind = Literal["http_proxy", "socks5"]
_PATTERN = re.compile(r"(http|socks5|socks5h)://([^/\s:@]+|\[[0-9a-fA-F:.]+\]):(\d{1,5})/?")


def check_proxy(value: str) -> str | None:
    """A config check: None when ``value`` is a proxy URL the probe can use."""
    match = _PATTERN.fullmatch(value)
    if match is None or not 0 < int(match.group(3)) < 65536:
        return ("not a proxy URL like http://127.0.0.1:3128 (HTTP CONNECT) or "
                "socks5h://127.0.0.1:9050 (SOCKS5, e.g. Tor)")
    return None


def kind_of(proxy: str | None) -> ProxyKind | None:
    if proxy is None:
        return None
    return "http_proxy" if proxy.startswith("http://") else "socks5"


def connector(proxy: str | None, context: ssl.SSLContext,
              limit: int = 100) -> aiohttp.BaseConnector:
    """The session's connector: through the SOCKS5 proxy, or direct (an HTTP CONNECT proxy
    is a per-request option, ``request_options``)."""
    if kind_of(proxy) != "socks5":
        return aiohttp.TCPConnector(ssl=context, limit=limit)
    assert proxy is not None
    from aiohttp_socks import ProxyConnector

    remote_names = proxy.startswith("socks5h://")
    return ProxyConnector.from_url(proxy.replace("socks5h://", "socks5://", 1),
                                   rdns=remote_names, ssl=context, limit=limit)


def request_options(proxy: str | None) -> dict[str, Any]:
    """Per-request options for ``proxy``: aiohttp's ``proxy=`` for HTTP CONNECT only."""
    return {"proxy": proxy} if kind_of(proxy) == "http_proxy" else {}


def path_of(fronted: bool, proxy: str | None) -> str:
    """How a request reached its endpoint, as measurements and heartbeats name it."""
    parts = [p for p in (kind_of(proxy), "front" if fronted else None) if p]
    return "+".join(parts) or "direct"
