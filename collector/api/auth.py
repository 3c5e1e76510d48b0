"""Who is uploading: the probe id behind a request's bearer token, and the JSON error the API
answers with. Apart from the handlers so that every route module (uploads, target lists, list
health) can authenticate without importing the handlers.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from collector.api.tokens import token_hash
from collector.keys import config_key, store_key


def json_error(status: type[web.HTTPException], reason: str,
               headers: dict[str, str] | None = None, **extra: Any) -> web.HTTPException:
    """The API's error answer: ``{"error": reason, ...}`` with ``status``."""
    return status(text=json.dumps({"error": reason, **extra}), content_type="application/json",
                  headers=headers)


async def authenticate(request: web.Request) -> str | None:
    """The probe id behind the bearer token; 401 without a token, 403 for a bad one.

    Returns None when tokens are not required and none was sent."""
    config = request.app[config_key]
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        if not config.auth.require_token:
            return None
        raise json_error(web.HTTPUnauthorized, "missing bearer token",
                         {"WWW-Authenticate": "Bearer"})
    token = header[7:].strip()
    # Tokens are printable ASCII (collector.api.tokens); other bytes arrive from aiohttp as
    # surrogate escapes that cannot even be hashed.
    if not token or not token.isascii() or not token.isprintable():
        raise json_error(web.HTTPUnauthorized, "malformed bearer token",
                         {"WWW-Authenticate": 'Bearer error="invalid_token"'})
    found = await request.app[store_key].probe_for_token(token_hash(token))
    if found is None:
        raise json_error(web.HTTPForbidden, "unknown token")
    probe_id, revoked = found
    if revoked:
        raise json_error(web.HTTPForbidden, "revoked token")
    return probe_id
