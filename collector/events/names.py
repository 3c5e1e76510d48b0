"""Names people know networks and countries by, for pages and alerts.

A reader under pressure recognises "Kazakhtelecom", not "AS9198"; both are shown, the name first.
Names come from a shipped CSV (``data/asn_names.csv``, each row with its source) and an
optional operator file in the same columns. A network without a name is shown by its number;
``AS0`` (a probe that declared no network and was not placed by GeoIP) is no network at all and
is shown as "network not known".
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from probe.core.typed_config import ConfigError

COLUMNS = ("cc", "asn", "name", "source")
UNKNOWN_ASN = "AS0"


@dataclass(frozen=True, slots=True)
class NetworkName:
    cc: str
    asn: str
    name: str
    source: str


def _rows(text: str, label: str) -> list[NetworkName]:
    reader = csv.DictReader(line for line in text.splitlines()
                            if line.strip() and not line.startswith("#"))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ConfigError(label, f"expected the columns {', '.join(COLUMNS)}")
    out = []
    for index, row in enumerate(reader):
        asn = (row.get("asn") or "").strip().upper()
        name = (row.get("name") or "").strip()
        if not asn.startswith("AS") or not asn[2:].isdigit() or not name:
            raise ConfigError(f"{label}[{index}]", "needs an AS number like AS9198 and a name")
        out.append(NetworkName((row.get("cc") or "").strip().upper(), asn, name,
                               (row.get("source") or "").strip()))
    return out


class NetworkNames:
    """AS number -> provider name, from the shipped file and any operator files."""

    def __init__(self, rows: Iterable[NetworkName] = ()) -> None:
        self.rows = {row.asn: row for row in rows}

    @classmethod
    def load(cls, extra: Iterable[str | Path] = ()) -> NetworkNames:
        shipped = resources.files("collector.events").joinpath("data/asn_names.csv")
        rows = _rows(shipped.read_text(encoding="utf-8"), "asn_names.csv")
        for path in extra:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError("status.asn_names", f"cannot read {path}: {exc.strerror}") \
                    from exc
            rows += _rows(text, "status.asn_names")  # later files win
        return cls(rows)

    def name(self, asn: str) -> str | None:
        row = self.rows.get(asn)
        return None if row is None else row.name

    def label(self, asn: str, unknown: str) -> str:
        """"Kazakhtelecom (AS9198)", "AS64500" when unnamed, ``unknown`` for AS0 or none."""
        if not asn or asn == UNKNOWN_ASN:
            return unknown
        name = self.name(asn)
        return asn if name is None else f"{name} ({asn})"
