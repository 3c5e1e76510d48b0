"""Event kinds: the one place where the names of the incidents Kuzot reports are defined.

The names are part of the events contract (design §4: ``GET /api/v1/events``, the status page,
notifications, metrics labels), so they are plain strings on the wire; code names them through
these constants, never by repeating the literal. Detection makes the first three; the fourth is
the monitor's own outage (the collector down, the control unreachable for everyone), shown to
researchers and never notified or alerted on.
"""

from __future__ import annotations

from typing import Final, Literal

DetectedKind = Literal["shutdown", "block", "throttling"]
Kind = Literal["shutdown", "block", "throttling", "monitor_outage"]

SHUTDOWN: Final = "shutdown"
BLOCK: Final = "block"
THROTTLING: Final = "throttling"
MONITOR_OUTAGE: Final = "monitor_outage"

# What detection reports, most severe first (the order the status page ranks them in).
DETECTED: Final[tuple[DetectedKind, ...]] = (SHUTDOWN, BLOCK, THROTTLING)
ALL: Final[tuple[Kind, ...]] = (*DETECTED, MONITOR_OUTAGE)
