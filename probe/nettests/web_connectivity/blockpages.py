"""Known fingerprints: blockpages, interception CAs and CDN challenge pages.

Three data files in ``probe/nettests/web_connectivity/data/`` (their origin and licence in
``probe/nettests/web_connectivity/data/README.md``):

* ``fingerprints.csv``: Kuzot's own rows (documented in its header), so that the data can
  grow without code changes; each row names its source.
* ``ooni_fingerprints_http.csv`` and ``ooni_fingerprints_dns.csv``: OONI's
  ``ooni/blocking-fingerprints``, copied unchanged. They merge OONI's, Censored Planet's and
  Citizen Lab's fingerprints and carry Citizen Lab's *scope* (``nat`` national, ``isp``,
  ``prod`` a filtering product, ``inst`` an institution, ``vbw`` a vague blocking word,
  ``fp`` a known false positive, ...) and *confidence* (``confidence_no_fp``, 0-10: how
  unlikely the pattern is to match a page that is not a blockpage).

Every ``Fingerprint`` records its ``origin`` (which file), ``scope`` and ``confidence``.

A ``blockpage`` or ``interception`` match of a specific scope is a deterministic fingerprint
of censorship: the analysis records it as ``confirmed:<name>`` in the evidence, and the
collector may raise an event to ``confirmed`` on it (OONI's fastpath does the same with
``ooni/blocking-fingerprints``). A *vague* one (scope ``vbw``) is no proof: it never
confirms, and only the unknown-blockpage rule (``probe.nettests.web_connectivity.blockphrases``) may
use it. A ``challenge`` match (a CDN's browser check) and a ``false_positive`` one (OONI's scopes
``fp`` and ``injb``: parked domains, hosting error pages, a router's own notice) are the opposite: a
page that differs from the control's for a reason that is not censorship.

Kuzot's own patterns are plain text, never regular expressions: a news site that writes about
blocking must not look like a blockpage. OONI's file has a few ``regexp`` rows; they are kept
as OONI wrote them and searched in at most ``MAX_TEXT`` characters.
"""

from __future__ import annotations

import base64
import binascii
import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

PURPOSES = frozenset({"blockpage", "interception", "challenge", "false_positive"})
MATCHES = frozenset({"contains", "full", "prefix", "regexp"})
# Citizen Lab's scopes as OONI's file uses them; "" on Kuzot's rows that predate the column.
SCOPES = frozenset({"", "nat", "isp", "prod", "inst", "vbw", "fp", "injb", "prov"})
VAGUE = "vbw"
# OONI's scopes that mark a page as *not* censorship.
_NOT_CENSORSHIP = frozenset({"fp", "injb"})
KUZOT = "kuzot"
OONI_COMMIT = "171641e60b54231cad18753a72145da87b0d3e07"
OONI = f"ooni/blocking-fingerprints@{OONI_COMMIT[:7]}"
# At most this many characters of a body are searched: the probe keeps a 2 KiB sample, and an
# OONI measurement may carry up to 512 KiB that no blockpage needs.
MAX_TEXT = 64 * 1024
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


class FingerprintError(ValueError):
    """A fingerprint file is malformed; the message names the file, row and column."""


@dataclass(frozen=True, slots=True)
class Fingerprint:
    name: str
    purpose: str
    location: str  # "body", "header.<name>", "dns" or "tls.issuer"
    match: str
    pattern: str
    countries: frozenset[str]
    source: str
    origin: str = KUZOT
    scope: str = ""
    confidence: int = 10

    @property
    def vague(self) -> bool:
        """A vague blocking word: a hint for the unknown-blockpage rule, never a proof."""
        return self.scope == VAGUE

    def applies_to(self, cc: str | None) -> bool:
        """Whether the fingerprint is expected in country ``cc`` (None: unknown, accept)."""
        return cc is None or "*" in self.countries or cc.upper() in self.countries

    def decides(self, cc: str | None) -> bool:
        """Whether a match is proof enough in country ``cc`` (None: unknown) to call a page a
        blockpage. Kuzot's rows and header fingerprints (the address of a blockpage host) do
        anywhere. An imported body or DNS fingerprint does only where it was seen (its
        expected countries), or, when it names no country, if its sources rated it unlikely
        to match anything else (confidence 8 or more): OONI's files hold patterns such as
        "<title>Access Denied</title>" (a blockpage in India, a CDN's refusal elsewhere) or
        10.10.34.35 (Iran's blockpage address, a private address anywhere else)."""
        if self.vague or self.purpose == "false_positive":
            return False
        if self.origin == KUZOT or self.location.startswith("header."):
            return True
        if "*" in self.countries:
            return self.confidence >= 8
        return cc is not None and cc.upper() in self.countries

    def matches(self, text: str) -> bool:
        if self.match == "full":
            return text == self.pattern
        if self.match == "prefix":
            return text.startswith(self.pattern)
        if self.match == "regexp":
            return _regexp(self.pattern).search(text[:MAX_TEXT]) is not None
        return self.pattern in text


@cache
def _regexp(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _check(fingerprint: Fingerprint, where: str) -> None:
    if not fingerprint.name:
        raise FingerprintError(f"{where}.name: empty")
    if fingerprint.purpose not in PURPOSES:
        raise FingerprintError(f"{where}.purpose: not one of {sorted(PURPOSES)}")
    if fingerprint.match not in MATCHES:
        raise FingerprintError(f"{where}.match: not one of {sorted(MATCHES)}")
    if fingerprint.scope not in SCOPES:
        raise FingerprintError(f"{where}.scope: not one of {sorted(SCOPES - {''})}")
    if not 0 <= fingerprint.confidence <= 10:
        raise FingerprintError(f"{where}.confidence: not in 0..10")
    if not (fingerprint.location in ("body", "dns", "tls.issuer")
            or fingerprint.location.startswith("header.")):
        raise FingerprintError(f"{where}.location: body, header.<name>, dns or tls.issuer")
    if not fingerprint.pattern or not fingerprint.countries or not fingerprint.source:
        raise FingerprintError(f"{where}: pattern, countries and source are required")
    if fingerprint.match == "regexp":
        try:
            _regexp(fingerprint.pattern)
        except re.error as exc:
            raise FingerprintError(f"{where}.pattern: bad regular expression: {exc}") from exc


def _confidence(value: str | None, where: str) -> int:
    try:
        return int((value or "10").strip())
    except ValueError as exc:
        raise FingerprintError(f"{where}.confidence: not an integer") from exc


def _unique(rows: list[Fingerprint], label: str) -> tuple[Fingerprint, ...]:
    names: set[str] = set()
    for index, fingerprint in enumerate(rows, start=1):
        if fingerprint.name in names:
            raise FingerprintError(f"{label} row {index}.name: duplicate {fingerprint.name!r}")
        names.add(fingerprint.name)
    return tuple(rows)


def parse(text: str) -> tuple[Fingerprint, ...]:
    """Parse Kuzot's fingerprint CSV; raises FingerprintError with the row.

    Columns ``scope`` and ``confidence`` are optional (files written before they existed
    still load: no scope, confidence 10)."""
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    out = []
    for index, row in enumerate(csv.DictReader(lines), start=1):
        where = f"fingerprints row {index}"
        try:
            fingerprint = Fingerprint(
                name=row["name"].strip(), purpose=row["purpose"].strip(),
                location=row["location"].strip(), match=row["match"].strip(),
                pattern=row["pattern"], countries=frozenset(row["countries"].split()),
                source=row["source"].strip(), origin=KUZOT,
                scope=(row.get("scope") or "").strip(),
                confidence=_confidence(row.get("confidence"), where),
            )
        except (KeyError, AttributeError) as exc:
            raise FingerprintError(f"{where}: missing column {exc}") from exc
        _check(fingerprint, where)
        out.append(fingerprint)
    return _unique(out, "fingerprints")


def parse_ooni(text: str, label: str = "ooni", origin: str = OONI) -> tuple[Fingerprint, ...]:
    """Parse a file of OONI's ``blocking-fingerprints`` (its own columns: name, scope,
    other_names, location_found, pattern_type, pattern, confidence_no_fp,
    expected_countries, source, exp_url, notes). No expected country (or OONI's ``ZZ``,
    unknown) means anywhere; scopes ``fp`` and ``injb`` become ``false_positive`` rows."""
    out = []
    for index, row in enumerate(csv.DictReader(text.splitlines()), start=1):
        where = f"{label} row {index}"
        try:
            countries = {c.strip().upper() for c in row["expected_countries"].split(",")
                         if c.strip()} - {"ZZ"}
            scope = row["scope"].strip()
            documented = row["source"].strip() or "unattributed"
            if row.get("exp_url"):
                documented += f" {row['exp_url'].strip()}"
            fingerprint = Fingerprint(
                name=row["name"].strip(),
                purpose="false_positive" if scope in _NOT_CENSORSHIP else "blockpage",
                location=row["location_found"].strip(), match=row["pattern_type"].strip(),
                pattern=row["pattern"], countries=frozenset(countries or {"*"}),
                source=documented, origin=origin, scope=scope,
                confidence=_confidence(row["confidence_no_fp"], where),
            )
        except (KeyError, AttributeError) as exc:
            raise FingerprintError(f"{where}: missing column {exc}") from exc
        _check(fingerprint, where)
        out.append(fingerprint)
    return _unique(out, label)


def _read(name: str) -> str:
    data = resources.files("probe.nettests.web_connectivity").joinpath(f"data/{name}")
    return data.read_text("utf-8")


@cache
def fingerprints() -> tuple[Fingerprint, ...]:
    """The shipped fingerprints, Kuzot's first (read once). Names are unique within a file;
    OONI's HTTP and DNS files share a few names, told apart by their location."""
    return (*parse(_read("fingerprints.csv")),
            *parse_ooni(_read("ooni_fingerprints_http.csv"), "ooni_fingerprints_http"),
            *parse_ooni(_read("ooni_fingerprints_dns.csv"), "ooni_fingerprints_dns"))


def body_text(response: dict[str, Any]) -> str:
    """The body as text, at most ``MAX_TEXT`` characters: the probe's ``body_sample``, or
    OONI's ``body`` (a string, or ``{"format": "base64", "data": ...}``)."""
    sample = response.get("body_sample")
    if sample:
        return str(sample)[:MAX_TEXT]
    body = response.get("body")
    if isinstance(body, dict) and body.get("format") == "base64":
        try:
            raw = base64.b64decode(str(body.get("data") or ""), validate=False)
        except (binascii.Error, ValueError):
            return ""
        return raw[:MAX_TEXT].decode("utf-8", "replace")
    return str(body)[:MAX_TEXT] if isinstance(body, str) else ""


def title_of(response: dict[str, Any]) -> str:
    """The page's title: the probe's ``x_title`` (``title`` before it was prefixed), else
    the first <title> of the body text."""
    recorded = response.get("x_title") or response.get("title")
    if recorded:
        return str(recorded)
    found = _TITLE.search(body_text(response))
    return found.group(1).strip() if found else ""


def _response_text(response: dict[str, Any], location: str) -> str | None:
    if location == "body":
        return body_text(response) or None
    if location.startswith("header."):
        wanted = location.removeprefix("header.")
        for name, value in (response.get("headers") or {}).items():
            if name.lower() == wanted:
                return str(value)
    return None


def match_response(
    response: dict[str, Any] | None, purposes: frozenset[str] = frozenset({"blockpage"}),
    table: tuple[Fingerprint, ...] | None = None, vague: bool = False,
) -> Fingerprint | None:
    """The first fingerprint of the given purposes that matches an HTTP ``response`` record
    (its headers and body). Vague fingerprints count only when ``vague`` is True."""
    if not response:
        return None
    texts: dict[str, str | None] = {}
    for fingerprint in table if table is not None else fingerprints():
        if fingerprint.purpose not in purposes or fingerprint.location in ("dns", "tls.issuer"):
            continue
        if fingerprint.vague and not vague:
            continue
        if fingerprint.location not in texts:
            texts[fingerprint.location] = _response_text(response, fingerprint.location)
        text = texts[fingerprint.location]
        if text is not None and fingerprint.matches(text):
            return fingerprint
    return None


def match_blockpage(response: dict[str, Any] | None, cc: str | None,
                    table: tuple[Fingerprint, ...] | None = None) -> Fingerprint | None:
    """The first blockpage fingerprint that matches ``response`` and decides in ``cc``."""
    candidates = _deciding(cc) if table is None else \
        tuple(f for f in table if f.purpose == "blockpage" and f.decides(cc))
    return match_response(response, table=candidates)


@cache
def _deciding(cc: str | None) -> tuple[Fingerprint, ...]:
    """The shipped blockpage fingerprints that decide in ``cc`` (one tuple per country)."""
    return tuple(f for f in fingerprints() if f.purpose == "blockpage" and f.decides(cc))


def match_dns(address: str | None, cc: str | None,
              table: tuple[Fingerprint, ...] | None = None) -> Fingerprint | None:
    """The first DNS fingerprint equal to ``address`` that decides in ``cc``."""
    table = table if table is not None else fingerprints()
    return match_value("dns", address, tuple(f for f in table if f.decides(cc)))


def match_value(
    location: str, value: str | None, table: tuple[Fingerprint, ...] | None = None,
) -> Fingerprint | None:
    """The first specific (not vague, not false-positive) fingerprint at ``location`` ("dns"
    or "tls.issuer") matching ``value``: 127.0.0.1 or 0.0.0.0 alone proves no censor."""
    if not value:
        return None
    for fingerprint in table if table is not None else fingerprints():
        if fingerprint.location == location and not fingerprint.vague \
                and fingerprint.purpose != "false_positive" and fingerprint.matches(value):
            return fingerprint
    return None


def match(response: dict[str, Any] | None) -> str | None:
    """The name of the first blockpage fingerprint matching ``response``, or None."""
    found = match_response(response)
    return found.name if found else None
