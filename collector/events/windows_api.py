"""The event windows told to probes in the heartbeat reply; pure, no aiohttp."""

from __future__ import annotations

from typing import Any

from collector.detect.model import iso
from collector.detect.windows import Calendar


def event_windows(calendar: Calendar, cc: str | None, now: float) -> list[dict[str, Any]]:
    """The windows in force for a probe in ``cc`` (all countries if unknown), with the cadence
    it should keep meanwhile (heartbeat and target intervals in seconds)."""
    return [{"name": w.name, "cc": w.cc, "start": iso(w.start), "end": iso(w.end),
             "heartbeat_interval": w.heartbeat_interval, "target_interval": w.target_interval}
            for w in calendar.active(cc, now)]
