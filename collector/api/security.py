"""Response headers that keep the collector's pages inert in a browser.

The status page is linked from news sites during a crisis, which makes it worth framing
(clickjacking), defacing through an injected script, or sniffing as another content type.
Every response therefore carries a Content-Security-Policy that allows no script at all, no
frame ancestor and no external resource; the page's one inline stylesheet is allowed by its
SHA-256 (``collector.events.statuspage.STYLE_HASH``), so the page stays a single request on a
throttled link. JSON and text answers carry the same headers: a browser that is tricked into
rendering them gets nothing to run either.

Headers are added on ``on_response_prepare``, which also sees the responses aiohttp makes
from raised ``HTTPException``s and its own 404/405, not only what handlers return. A handler
that sets one of these headers itself keeps its value.
"""

from __future__ import annotations

from aiohttp import web

from collector.events.statuspage import STYLE_HASH

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    f"style-src '{STYLE_HASH}'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
])
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # For browsers without CSP level 2 (frame-ancestors).
    "X-Frame-Options": "DENY",
    # Links on the page lead to the collector's own API; nothing needs to know where a
    # reader came from.
    "Referrer-Policy": "no-referrer",
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)


def setup_security_headers(app: web.Application) -> None:
    app.on_response_prepare.append(add_security_headers)
