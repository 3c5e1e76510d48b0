"""Which spooled measurements a refused batch names, read from the collector's answer.

The collector refuses a batch as a whole and lists each bad measurement in its JSON error,
``{"error": ..., "rejected": [{"index", "uid", "reason", "message"}]}`` (see the collector's
OpenAPI document). The daemon sets exactly those aside in quarantine and sends the rest; the
list is read field by field, never parsed out of the error text, so a reworded message changes
nothing here. A refusal that names nothing (a body too large, an older collector) leaves the
caller to halve the batch until the refused measurement is alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probe.local.spool import Entry


@dataclass(frozen=True, slots=True)
class Refused:
    """One spooled measurement the collector refused, and why (its message, else reason)."""

    entry: Entry
    reason: str


def refused(batch: list[Entry], rejected: list[dict[str, Any]]) -> list[Refused]:
    """The entries of ``batch`` the collector's ``rejected`` list names: by uid, else (a
    measurement whose uid the collector could not read) by its index in the batch."""
    by_uid = {entry.uid: entry for entry in batch}
    found: dict[str, Refused] = {}
    for item in rejected:
        reason = str(item.get("message") or item.get("reason"))
        uid = item.get("uid")
        index = item.get("index")
        if isinstance(uid, str) and uid in by_uid:
            entry = by_uid[uid]
        elif isinstance(index, int) and not isinstance(index, bool) and \
                0 <= index < len(batch):
            entry = batch[index]
        else:
            continue
        found.setdefault(entry.uid, Refused(entry, reason))
    return list(found.values())
