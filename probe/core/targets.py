"""Targets and the target-list CSV formats, shared by the probe and the collector.

The probe reads its lists from CSV files (``target_files``) and the collector serves the same
lists to probes (``collector.api.target_lists``): one reader for both, here in ``probe.core``
because the collector may import only ``probe.core`` and ``probe.netx``. A file is either in the
project's format (``url,category,cc,role,...``) or in Citizen Lab's test-list format
(``probe.core.citizenlab``), told apart by its header.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from probe.core import citizenlab
from probe.core.typed_config import ConfigError, build, checked, is_http_url, positive


def optional_positive(value: float | None) -> str | None:
    return None if value is None else positive(value)


def _iso_date(value: str | None) -> str | None:
    if value is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return None
    return "not a date like 2024-04-18"


@dataclass(frozen=True, slots=True)
class Target:
    url: str = checked("", is_http_url)
    category: str = ""
    cc: str = "*"
    role: Literal["test", "baseline", "canary"] = "test"
    baseline: str | None = None
    interval: float | None = field(default=None, metadata={"duration": True,
                                                           "check": optional_positive})
    # Provenance, kept from the lists (Citizen Lab's date_added, source and notes).
    date_added: str | None = checked(None, _iso_date)
    source: str | None = None
    notes: str | None = None
    # The operator's override of the pacing (``collector targets set-priority``): ``high``
    # is measured at its cadence, ``low`` only in the rotating sample; null: by its category.
    priority: Literal["high", "low"] | None = None


CSV_COLUMNS = ("url", "category", "cc", "role", "baseline", "interval", "date_added", "source",
               "notes")
"""The project's target-list columns, in the order the shipped lists use; only url is
required."""


def load_targets_csv(path: Path, label: str) -> tuple[Target, ...]:
    """Targets from a CSV in the project's format (header: any of ``CSV_COLUMNS``, lines
    starting with ``#`` are comments) or in Citizen Lab's (``citizenlab.COLUMNS``; the country
    is the file's name)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ConfigError(label, f"cannot read {path.name}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(label, f"{path.name} is not UTF-8 text") from exc
    reader = csv.DictReader(line for line in text.splitlines()
                            if line.strip() and not line.startswith("#"))
    rows = list(reader)
    if citizenlab.is_citizenlab(reader.fieldnames):
        cc = citizenlab.country_of(path)
        if cc is None:
            raise ConfigError(label, f"{path.name} is a Citizen Lab list but its name is not a "
                              "country: name it like kg.csv, or global.csv")
        return tuple(build(Target, citizenlab.target_fields(row, cc), f"{label}[{index}]")
                     for index, row in enumerate(rows))
    targets = []
    for index, row in enumerate(rows):
        extra = set(row) - set(CSV_COLUMNS)
        if extra - {None}:
            raise ConfigError(f"{label}[{index}]", f"unknown column {sorted(extra - {None})[0]!r}")
        data = {k: v for k, v in row.items() if k in CSV_COLUMNS and v not in (None, "")}
        targets.append(build(Target, data, f"{label}[{index}]"))
    return tuple(targets)
