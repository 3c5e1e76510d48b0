"""Event windows: sensitive dates per country, and what they change.

A window is anchored on a date T (an election, a referendum, a protest anniversary) and runs
from ``T - before`` to ``T + after`` (ref §6.5: T-3 d to T+7 d). Inside it probes are told to
raise their cadence. Baselines are frozen from ``T - freeze_before`` (ref §6.5: T-7 d) to the
window's end, so that pre-election tension cannot teach a detector that slowness is normal.
Tier rules do not change inside a window: precision is not traded for speed in public alerts.

Dates are ``YYYY-MM-DD`` (once) or ``MM-DD`` (every year). Pure: the YAML file is read by
``collector.events.windows``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True, slots=True)
class WindowSpec:
    name: str
    cc: str
    date: str  # YYYY-MM-DD or MM-DD
    before: float
    after: float
    freeze_before: float
    heartbeat_interval: float
    target_interval: float
    why: str = ""

    @property
    def yearly(self) -> bool:
        return len(self.date) == 5


@dataclass(frozen=True, slots=True)
class WindowInstance:
    """One occurrence of a window, in epoch seconds."""

    name: str
    cc: str
    anchor: float
    start: float
    end: float
    freeze_start: float
    heartbeat_interval: float
    target_interval: float


def anchor_of(spec: WindowSpec, year: int) -> float | None:
    """The anchor (00:00 UTC) of ``spec`` in ``year``; None if it does not occur that year."""
    text = f"{year}-{spec.date}" if spec.yearly else spec.date
    if not spec.yearly and int(spec.date[:4]) != year:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError:  # 02-29 outside leap years
        return None


class Calendar:
    """The windows of every country; answers "which windows cover this moment?"."""

    def __init__(self, specs: tuple[WindowSpec, ...] = ()) -> None:
        self.specs = specs

    def instances(self, t: float) -> list[WindowInstance]:
        """Occurrences whose freeze-to-end span covers ``t``."""
        if not self.specs:
            return []
        year = datetime.fromtimestamp(t, UTC).year
        found = []
        for spec in self.specs:
            for y in (year - 1, year, year + 1):
                anchor = anchor_of(spec, y)
                if anchor is None:
                    continue
                instance = WindowInstance(
                    name=spec.name, cc=spec.cc, anchor=anchor, start=anchor - spec.before,
                    end=anchor + spec.after, freeze_start=anchor - spec.freeze_before,
                    heartbeat_interval=spec.heartbeat_interval,
                    target_interval=spec.target_interval)
                if min(instance.freeze_start, instance.start) <= t < instance.end:
                    found.append(instance)
        return found

    def active(self, cc: str | None, t: float) -> list[WindowInstance]:
        """Windows in force for country ``cc`` (every country when None) at ``t``."""
        return [w for w in self.instances(t)
                if w.start <= t < w.end and (cc is None or w.cc == cc)]

    def frozen(self, cc: str, t: float) -> bool:
        """Whether baselines of country ``cc`` must not learn from data at ``t``."""
        return any(w.cc == cc and w.freeze_start <= t < w.end for w in self.instances(t))
