"""Event windows: periods (elections, referendums, protest anniversaries) when probes measure
more often, told by the collector in its heartbeat answer as ``event_windows``.

The answer is data from the network, so it is parsed defensively: entries that are not
objects, lack a parsable ``start``/``end``, end before they start, or name another country
(``cc``) are skipped, never fatal. Accepted time spellings: ISO 8601 with or without ``Z`` or
an offset, and OONI's "YYYY-MM-DD HH:MM:SS" (UTC). A window is active on ``[start, end)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

MAX_WINDOWS = 64


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    name: str = ""

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


def parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
        # An offset can carry year 1 or 9999 out of the representable range.
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None


def parse(raw: object, country: str | None = None) -> list[Window]:
    """The usable windows in ``raw`` (the ``event_windows`` value), sorted by start."""
    if not isinstance(raw, list):
        return []
    windows: list[Window] = []
    for item in raw[:MAX_WINDOWS]:
        if not isinstance(item, dict):
            continue
        start, end = parse_time(item.get("start")), parse_time(item.get("end"))
        if start is None or end is None or end <= start:
            continue
        cc = item.get("cc")
        if isinstance(cc, str) and country and cc not in (country, "*"):
            continue
        name = item.get("name")
        windows.append(Window(start, end, name[:80] if isinstance(name, str) else ""))
    return sorted(windows, key=lambda w: w.start)


def active(windows: list[Window], moment: datetime) -> Window | None:
    """The window containing ``moment``, if any."""
    return next((w for w in windows if w.contains(moment)), None)


def to_wire(windows: list[Window]) -> list[dict[str, Any]]:
    """Windows back to JSON (for the journal), in the spelling ``parse`` reads."""
    return [{"start": w.start.isoformat(), "end": w.end.isoformat(), "name": w.name}
            for w in windows]
