"""Event kinds: the one place where the names of the incidents Kuzot reports are defined.

The names are part of the events contract (design §4: ``GET /api/v1/events``, the status page,
notifications, metrics labels), so they are plain strings on the wire; code names them through
these constants, never by repeating the literal. Detection makes the first four; the last is
the monitor's own outage (the collector down, the control unreachable for everyone), shown to
researchers and never notified or alerted on.
"""

from __future__ import annotations

from typing import Final, Literal

DetectedKind = Literal["shutdown", "block", "throttling", "monitor_blocked"]
Kind = Literal["shutdown", "block", "throttling", "monitor_blocked", "monitor_outage"]

SHUTDOWN: Final = "shutdown"
BLOCK: Final = "block"
THROTTLING: Final = "throttling"
MONITOR_OUTAGE: Final = "monitor_outage"
# The monitor blocked from a network: its probes reach the collector only by a fallback
# endpoint, or no control at all, while other networks reach them directly
# (collector.detect.monitor_reach). Censorship of the monitor, reported like the rest.
MONITOR_BLOCKED: Final = "monitor_blocked"

# What detection reports, most severe first (the order the status page ranks them in).
DETECTED: Final[tuple[DetectedKind, ...]] = (SHUTDOWN, BLOCK, THROTTLING, MONITOR_BLOCKED)
ALL: Final[tuple[Kind, ...]] = (*DETECTED, MONITOR_OUTAGE)
