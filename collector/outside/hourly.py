"""The outside-in signal hour by hour, per network, for the status page's chart.

Why stored: the prober's rounds live in memory, and the status page may be served by another
collector, or after a restart. After each round the share of a network's judged blocks that
are up is added to its hour; the mean share per hour over the last 7 days is saved as one
named state document (``STATE_NAME``) in the store. Bounded: ``HOURS`` hours per network, and
the networks are those of the operator's block files. Pure; the service saves, the page reads.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

STATE_NAME = "outside.hourly"
HOURS = 7 * 24
VERSION = 1


@dataclass(slots=True)
class HourlyShare:
    """Per "CC|network": hour (Unix hours) -> [sum of round shares, rounds]."""

    series: dict[str, dict[int, list[float]]] = field(default_factory=dict)

    def add(self, cc: str, network: str, t: float, share: float) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share must be in [0, 1], got {share}")
        hour = int(t // 3600)
        cell = self.series.setdefault(f"{cc}|{network}", {}).setdefault(hour, [0.0, 0.0])
        cell[0] += share
        cell[1] += 1
        self.prune(hour)

    def prune(self, hour: int) -> None:
        """Forget hours older than the ``HOURS`` ending with ``hour``."""
        for key in list(self.series):
            kept = {h: c for h, c in self.series[key].items() if h > hour - HOURS}
            if kept:
                self.series[key] = kept
            else:
                del self.series[key]

    def shares(self, now: float) -> dict[tuple[str, str], list[float | None]]:
        """Per (country, network): the mean share up of each of the ``HOURS`` hours ending
        with the current one (None for an hour without a round)."""
        last = int(now // 3600)
        rows: dict[tuple[str, str], list[float | None]] = {}
        for key, hours in sorted(self.series.items()):
            cc, _, network = key.partition("|")
            row: list[float | None] = []
            for hour in range(last - HOURS + 1, last + 1):
                cell = hours.get(hour)
                row.append(None if cell is None or not cell[1] else cell[0] / cell[1])
            if any(value is not None for value in row):
                rows[(cc, network)] = row
        return rows

    def to_json(self) -> str:
        return json.dumps({"version": VERSION, "series": {
            key: {str(h): c for h, c in hours.items()} for key, hours in self.series.items()}})

    @classmethod
    def from_json(cls, text: str | None) -> HourlyShare:
        """The saved document, or an empty one when there is none; ``ValueError`` names what
        is wrong with a document that cannot be read (the caller logs it and starts anew)."""
        if text is None:
            return cls()
        data: Any = json.loads(text)
        if not isinstance(data, Mapping) or data.get("version") != VERSION or \
                not isinstance(data.get("series"), Mapping):
            raise ValueError(f"{STATE_NAME}: not a version {VERSION} document")
        series: dict[str, dict[int, list[float]]] = {}
        for key, hours in data["series"].items():
            if not isinstance(key, str) or "|" not in key or not isinstance(hours, Mapping):
                raise ValueError(f"{STATE_NAME}: bad series {key!r}")
            cells: dict[int, list[float]] = {}
            for hour, cell in hours.items():
                if not isinstance(cell, list) or len(cell) != 2 or \
                        not all(isinstance(v, int | float) for v in cell) or \
                        not 0 <= cell[0] <= cell[1]:
                    raise ValueError(f"{STATE_NAME}: bad hour {hour!r} of {key}")
                cells[int(hour)] = [float(cell[0]), float(cell[1])]
            series[key] = cells
        return cls(series)
