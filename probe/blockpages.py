"""Known blockpage fingerprints: data only, matched against a response's headers and body.

A match is a deterministic fingerprint: it lets the collector raise an event to
``confirmed``. Add entries with the source that documents them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Fingerprint:
    name: str
    where: str  # "body" or "header:<name>"
    pattern: re.Pattern[str]


FINGERPRINTS: tuple[Fingerprint, ...] = (
    # Generic wording used by CIS ISPs' and regulators' stub pages ("access is restricted").
    Fingerprint("ru_access_restricted", "body",
                re.compile(r"доступ\s+(к\s+\S+\s+)?(ограничен|заблокирован)", re.I)),
    Fingerprint("kz_blocked_by_court", "body",
                re.compile(r"(заблокирован|blocked)\s.*(решени\w+\s+суда|court)", re.I | re.S)),
    Fingerprint("en_blocked_by_authority", "body",
                re.compile(r"(this|the)\s+(site|resource|page)\s+(has been|is)\s+blocked", re.I)),
    Fingerprint("kuzot_lab_blockpage", "body", re.compile(r"KUZOT-LAB-BLOCKPAGE")),
)


def match(response: dict[str, Any] | None) -> str | None:
    """The name of the first fingerprint that matches ``response``, or None."""
    if not response:
        return None
    body = response.get("body_sample") or ""
    headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
    for fingerprint in FINGERPRINTS:
        if fingerprint.where == "body":
            text = body
        else:
            text = headers.get(fingerprint.where.split(":", 1)[1], "")
        if text and fingerprint.pattern.search(text):
            return fingerprint.name
    return None
