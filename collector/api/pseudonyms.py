"""Who may see real probe ids in the read API, and the pseudonym everyone else sees.

A probe id names a volunteer's machine (``vol-a``, ``kg-osh-home``): published, it would tell a
censor which probe to look for. Public answers carry instead a keyed hash of it (HMAC-SHA-256
with a salt kept in the database, so the pseudonym of a probe is stable across restarts and
researchers can still group measurements by probe). The operator's read token (a file named by
``read_api.operator_token_file``) unlocks the real ids. The document of a measurement carries
the id too (``annotations.probe_id``) and gets the same treatment.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from collector.store import TIME_FORMAT, Store

SALT_STATE = "read_api_probe_salt"
PREFIX = "p-"


@dataclass(frozen=True, slots=True)
class ReadAccess:
    salt: bytes
    operator_token: str | None = None

    def pseudonym(self, probe_id: str) -> str:
        digest = hmac.new(self.salt, probe_id.encode(), hashlib.sha256).hexdigest()
        return PREFIX + digest[:16]

    def is_operator(self, authorization: str | None) -> bool:
        if self.operator_token is None or not authorization:
            return False
        if not authorization.startswith("Bearer "):
            return False
        return hmac.compare_digest(authorization[7:].strip().encode(errors="replace"),
                                   self.operator_token.encode())

    def row(self, row: dict[str, Any], operator: bool) -> dict[str, Any]:
        if not operator and isinstance(row.get("probe_id"), str):
            row["probe_id"] = self.pseudonym(row["probe_id"])
        return row

    def document(self, doc: Any, operator: bool) -> Any:
        annotations = doc.get("annotations") if isinstance(doc, dict) else None
        if not operator and isinstance(annotations, dict) and \
                isinstance(annotations.get("probe_id"), str):
            annotations["probe_id"] = self.pseudonym(annotations["probe_id"])
        return doc


async def load_access(store: Store, operator_token_file: str | None) -> ReadAccess:
    """The salt from the database (made on first start) and the operator token, if any."""
    saved = await store.load_state(SALT_STATE)
    if saved is None:
        saved = secrets.token_hex(32)
        await store.save_state(SALT_STATE, saved, datetime.now(UTC).strftime(TIME_FORMAT))
        # Two collectors starting together on one database: the one saved last wins for both.
        saved = await store.load_state(SALT_STATE) or saved
    token = None
    if operator_token_file is not None:
        token = Path(operator_token_file).read_text(encoding="utf-8").strip() or None
    return ReadAccess(bytes.fromhex(saved), token)
