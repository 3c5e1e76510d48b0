"""Probe tokens: random secrets handed out once, stored only as SHA-256 hashes.

A token is 256 random bits, so an unsalted fast hash is enough: there is nothing to guess
from the hash, and lookups by hash stay one indexed query per request.
"""

from __future__ import annotations

import hashlib
import re
import secrets

_PROBE_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")


def new_token() -> str:
    return "kz_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def valid_probe_id(probe_id: str) -> bool:
    """Probe ids appear in metric labels and logs: short, plain characters only."""
    return bool(_PROBE_ID.fullmatch(probe_id))
