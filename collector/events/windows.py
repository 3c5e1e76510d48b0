"""Reads the event-window calendar (``configs/events.yaml``) into ``detect.windows.Calendar``.

The file is validated like every config: unknown keys and bad values fail at load with the key
path (``windows[3].date: not YYYY-MM-DD or MM-DD``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from collector.detect.windows import Calendar, WindowSpec
from probe.core.typed_config import (
    ConfigError,
    build,
    checked,
    duration_field,
    is_country_code,
    positive,
    read_yaml,
)


def _date(value: Any) -> str | None:
    text = str(value)
    sample = {10: text, 5: f"2024-{text}"}.get(len(text))  # 2024 is a leap year: 02-29 is ok
    try:
        if sample is not None:
            datetime.strptime(sample, "%Y-%m-%d")
            return None
    except ValueError:
        pass
    return "not YYYY-MM-DD or MM-DD (quote it: YAML reads an unquoted date as a date)"


@dataclass(frozen=True, slots=True)
class Cadence:
    """What probes are asked to do inside a window (ref §6.2, §6.3: 30 s and 15 min)."""

    heartbeat: float = duration_field(30.0, positive)
    targets: float = duration_field(900.0, positive)


@dataclass(frozen=True, slots=True)
class Entry:
    name: str
    cc: str = checked("ZZ", is_country_code)
    date: str = checked("01-01", _date)
    before: float = duration_field(3 * 86400.0)  # ref §6.5: from T-3 d
    after: float = duration_field(7 * 86400.0)  # ref §6.5: to T+7 d
    freeze_before: float = duration_field(7 * 86400.0)  # ref §6.5: freeze baselines at T-7 d
    why: str = ""
    sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CalendarFile:
    cadence: Cadence = field(default_factory=Cadence)
    windows: tuple[Entry, ...] = ()


def build_calendar(data: object) -> Calendar:
    parsed = build(CalendarFile, data)
    names = set()
    for index, entry in enumerate(parsed.windows):
        if entry.name in names:
            raise ConfigError(f"windows[{index}].name", f"duplicate window {entry.name!r}")
        names.add(entry.name)
    return Calendar(tuple(
        WindowSpec(name=e.name, cc=e.cc, date=e.date, before=e.before, after=e.after,
                   freeze_before=e.freeze_before, heartbeat_interval=parsed.cadence.heartbeat,
                   target_interval=parsed.cadence.targets, why=e.why)
        for e in parsed.windows))


def load_calendar(path: str | Path | None) -> Calendar:
    """The calendar in ``path``; an empty one for None."""
    if path is None:
        return Calendar()
    return build_calendar(read_yaml(path))
