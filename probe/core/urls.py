"""URLs as the probe and the collector's control both read them: split into the parts DNS,
TCP, TLS and HTTP need, and the target of a redirect, parsed defensively.

Shared by the probe's tests and the collector's control vantage, so both follow a redirect
chain the same way; here in ``probe.core`` because the collector may import only
``probe.core`` and ``probe.netx``.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from probe.core import failures
from probe.netx import http as netx_http

REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
# A longer Location is refused (http_invalid_redirect_location): the URL is recorded twice per
# hop, and eleven hops of it must stay well inside the collector's 2 MiB document limit.
MAX_LOCATION_LENGTH = netx_http.DEFAULT_LIMITS.location_length


def ascii_host(host: str) -> str:
    """The host as DNS, SNI and ``Host`` need it: IDNA (punycode) for non-ASCII names."""
    host = host.rstrip(".").lower()
    if host.isascii():
        return host
    return host.encode("idna").decode("ascii")


def split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, ASCII host, port, path-with-query); raises ValueError for a non-http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = ascii_host(parts.hostname)
    except (ValueError, UnicodeError) as exc:
        raise ValueError(f"not an http(s) URL: {url!r}: {exc}") from exc
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, host, port, path


def redirect_target(base: str, location: str) -> tuple[str | None, str | None]:
    """The absolute URL a ``Location`` value leads to, or a failure string; never raises.

    A Location from a site, a blockpage or a middlebox is hostile input: ``http://[::1/evil``,
    ``http://host:99999/``, ``javascript:...`` or ``http://`` end the chain with a failure
    instead of an exception. No host or a scheme other than http(s) is OONI's
    ``http_invalid_redirect_location_host``; anything else unparsable is
    ``http_invalid_redirect_location``.
    """
    if len(location) > MAX_LOCATION_LENGTH:
        return None, failures.HTTP_INVALID_REDIRECT_URL
    try:
        target = urlsplit(location)
        if target.scheme and (target.scheme.lower() not in ("http", "https")
                              or not target.netloc):
            return None, failures.HTTP_INVALID_REDIRECT
        absolute = urljoin(base, location)
        split_url(absolute)
    except (ValueError, UnicodeError):
        return None, failures.HTTP_INVALID_REDIRECT_URL
    if not urlsplit(absolute).hostname:
        return None, failures.HTTP_INVALID_REDIRECT
    return absolute, None
