"""Known fingerprints: blockpages, interception CAs and CDN challenge pages.

The data lives in ``probe/data/fingerprints.csv`` (documented in its header) so that it can
grow without code changes; each row names its source. A ``blockpage`` or ``interception``
match is a deterministic fingerprint of censorship: the analysis records it as
``confirmed:<name>`` in the evidence, and the collector may raise an event to ``confirmed``
on it (OONI's fastpath does the same with ``ooni/blocking-fingerprints``). A ``challenge``
match (a CDN's browser check) is the opposite: a page that differs from the control's for a
reason that is not censorship.

Patterns are plain text, never regular expressions: a news site that writes about blocking
must not look like a blockpage.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from probe.wire import body_bytes

PURPOSES = frozenset({"blockpage", "interception", "challenge"})
MATCHES = frozenset({"contains", "full", "prefix"})


class FingerprintError(ValueError):
    """The fingerprint file is malformed; the message names the row and column."""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    name: str
    purpose: str
    location: str  # "body", "header.<name>", "dns" or "tls.issuer"
    match: str
    pattern: str
    countries: frozenset[str]
    source: str

    def applies_to(self, cc: str | None) -> bool:
        """Whether the fingerprint is expected in country ``cc`` (None: unknown, accept)."""
        return cc is None or "*" in self.countries or cc.upper() in self.countries

    def matches(self, text: str) -> bool:
        if self.match == "full":
            return text == self.pattern
        if self.match == "prefix":
            return text.startswith(self.pattern)
        return self.pattern in text


def parse(text: str) -> tuple[Fingerprint, ...]:
    """Parse the CSV text of a fingerprint file; raises FingerprintError with the row."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    out = []
    names: set[str] = set()
    for index, row in enumerate(csv.DictReader(lines), start=1):
        where = f"fingerprints row {index}"
        try:
            fingerprint = Fingerprint(
                name=row["name"].strip(), purpose=row["purpose"].strip(),
                location=row["location"].strip(), match=row["match"].strip(),
                pattern=row["pattern"], countries=frozenset(row["countries"].split()),
                source=row["source"].strip(),
            )
        except (KeyError, AttributeError) as exc:
            raise FingerprintError(f"{where}: missing column {exc}") from exc
        if not fingerprint.name or fingerprint.name in names:
            raise FingerprintError(f"{where}.name: empty or duplicate {fingerprint.name!r}")
        if fingerprint.purpose not in PURPOSES:
            raise FingerprintError(f"{where}.purpose: not one of {sorted(PURPOSES)}")
        if fingerprint.match not in MATCHES:
            raise FingerprintError(f"{where}.match: not one of {sorted(MATCHES)}")
        if not (fingerprint.location in ("body", "dns", "tls.issuer")
                or fingerprint.location.startswith("header.")):
            raise FingerprintError(f"{where}.location: body, header.<name>, dns or tls.issuer")
        if not fingerprint.pattern or not fingerprint.countries or not fingerprint.source:
            raise FingerprintError(f"{where}: pattern, countries and source are required")
        names.add(fingerprint.name)
        out.append(fingerprint)
    return tuple(out)


@cache
def fingerprints() -> tuple[Fingerprint, ...]:
    """The shipped fingerprints (read once)."""
    text = resources.files("probe").joinpath("data/fingerprints.csv").read_text("utf-8")
    return parse(text)


def _response_text(response: dict[str, Any], location: str) -> str | None:
    if location == "body":
        # OONI's body (text, or base64 when not UTF-8); ``body_sample`` in older measurements.
        body = response.get("body", response.get("body_sample"))
        if isinstance(body, dict):
            return body_bytes(body).decode("utf-8", "replace") or None
        return str(body or "") or None
    if location.startswith("header."):
        wanted = location.removeprefix("header.")
        for name, value in (response.get("headers") or {}).items():
            if name.lower() == wanted:
                return str(value)
    return None


def match_response(
    response: dict[str, Any] | None, purposes: frozenset[str] = frozenset({"blockpage"}),
    table: tuple[Fingerprint, ...] | None = None,
) -> Fingerprint | None:
    """The first fingerprint of the given purposes that matches an HTTP ``response`` record."""
    if not response:
        return None
    for fingerprint in table if table is not None else fingerprints():
        if fingerprint.purpose not in purposes or fingerprint.location in ("dns", "tls.issuer"):
            continue
        text = _response_text(response, fingerprint.location)
        if text is not None and fingerprint.matches(text):
            return fingerprint
    return None


def match_value(
    location: str, value: str | None, table: tuple[Fingerprint, ...] | None = None
) -> Fingerprint | None:
    """The first fingerprint at ``location`` ("dns" or "tls.issuer") matching ``value``."""
    if not value:
        return None
    for fingerprint in table if table is not None else fingerprints():
        if fingerprint.location == location and fingerprint.matches(value):
            return fingerprint
    return None


def match(response: dict[str, Any] | None) -> str | None:
    """The name of the first blockpage fingerprint matching ``response``, or None."""
    found = match_response(response)
    return found.name if found else None
