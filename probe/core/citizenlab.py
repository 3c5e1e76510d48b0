"""Citizen Lab's test-list CSV format, read as Citizen Lab publishes it.

OONI Probe measures the lists of the citizenlab/test-lists repository: one file per country
(``lists/kg.csv``) and one global list (``lists/global.csv``), with the header
``url,category_code,category_description,date_added,source,notes``. Reading that format
natively lets an operator point ``target_files`` at a file of a test-lists checkout and lets
``probe.config.targets_import`` build the shipped lists from the same code path.

The format has no country column: the country is the file's name, as in the repository
(``kg.csv`` is Kyrgyzstan, ``global.csv`` is every country). A file in this format under any
other name is refused rather than guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

COLUMNS = ("url", "category_code", "category_description", "date_added", "source", "notes")
"""Citizen Lab's header, in its order (their linter rejects any other)."""


def is_citizenlab(header: Sequence[str] | None) -> bool:
    """True when a CSV header is exactly Citizen Lab's."""
    return tuple(header or ()) == COLUMNS


def country_of(path: Path) -> str | None:
    """The country scope of a Citizen Lab list from its file name: ``kg.csv`` -> ``KG``,
    ``global.csv`` -> ``*``; None for any other name (``cis.csv``, ``mylist.csv``)."""
    stem = path.stem.lower()
    if stem == "global":
        return "*"
    if len(stem) == 2 and stem.isascii() and stem.isalpha():
        return stem.upper()
    return None


def target_fields(row: Mapping[str, str | None], cc: str) -> dict[str, str]:
    """The project's target fields for one Citizen Lab row: its category code, date and
    source are kept; the description is the code's and is not repeated. Empty values are
    left out so the target's defaults apply."""
    fields = {
        "url": row.get("url"),
        "category": row.get("category_code"),
        "cc": cc,
        "date_added": row.get("date_added"),
        "source": row.get("source"),
        "notes": row.get("notes"),
    }
    return {key: value.strip() for key, value in fields.items() if value and value.strip()}
