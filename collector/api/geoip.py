"""Where a submission came from, by its address, from MaxMind-format databases (optional).

A probe declares its country and network, and may be wrong (a VPN, a misconfiguration, a
probe that moved). When the operator configures a GeoIP database the submitter's address
decides the stored location and any disagreement with the declaration is kept as a flag;
the address itself is used for the lookup only and never stored. Reads GeoLite2/GeoIP2
Country and ASN files and the common one-file layouts (``country``/``asn`` strings).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import maxminddb


@dataclass(frozen=True, slots=True)
class Location:
    cc: str | None
    asn: str | None


@dataclass(frozen=True, slots=True)
class Placement:
    """The location a measurement is stored under, where it came from, and the flag."""

    cc: str
    asn: str
    source: str  # "geoip" or "declared"
    mismatch: bool


def _country(record: dict[str, Any]) -> str | None:
    country = record.get("country")
    if isinstance(country, dict):
        country = country.get("iso_code")
    if country is None:
        country = record.get("country_code")
    if isinstance(country, str) and len(country) == 2 and country.isalpha():
        return country.upper()
    return None


def _asn(record: dict[str, Any]) -> str | None:
    number = record.get("autonomous_system_number")
    if isinstance(number, int) and not isinstance(number, bool) and number > 0:
        return f"AS{number}"
    text = record.get("asn")
    if isinstance(text, int) and not isinstance(text, bool) and text > 0:
        return f"AS{text}"
    if isinstance(text, str):
        digits = text.upper().removeprefix("AS")
        if digits.isdigit() and int(digits) > 0:
            return f"AS{int(digits)}"
    return None


class GeoIP:
    """Looks addresses up in one or two databases (country, ASN); closes them on ``close``."""

    def __init__(self, *paths: str) -> None:
        self.readers: list[Any] = []
        try:
            for path in paths:
                self.readers.append(maxminddb.open_database(path))
        except BaseException:
            self.close()
            raise

    def lookup(self, address: str | None) -> Location | None:
        """Country and ASN of ``address``, or None when no database knows it."""
        if not address:
            return None
        cc = asn = None
        for reader in self.readers:
            try:
                record = reader.get(address)
            except ValueError:  # not an address, or IPv6 in an IPv4-only database
                continue
            if isinstance(record, dict):
                cc = cc or _country(record)
                asn = asn or _asn(record)
        return Location(cc, asn) if cc or asn else None

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
        self.readers = []


def place(declared_cc: str, declared_asn: str, found: Location | None) -> Placement:
    """Decide the stored location: the database's where it knows, else the declaration."""
    if found is None:
        return Placement(declared_cc, declared_asn, "declared", False)
    cc = found.cc or declared_cc
    asn = found.asn or declared_asn
    return Placement(cc, asn, "geoip", (cc, asn) != (declared_cc, declared_asn))
