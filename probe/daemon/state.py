"""What the daemon knows now, as one snapshot: read by the local ``/metrics`` and the heartbeat.

The daemon builds a ``DaemonState`` on demand (``Daemon.state()``); readers get plain values
and never the daemon's attributes, so they can be tested with a state written by hand and the
daemon may keep its bookkeeping as it likes. (``probe status`` reads the journal on disk, not
the daemon: it works while the daemon is stopped.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from probe.local.spool import Depth


@dataclass(frozen=True, slots=True)
class DaemonState:
    depth: Depth  # what waits in the spool
    counters: dict[str, int] = field(default_factory=dict)  # spool counters since install
    measured: dict[str, int] = field(default_factory=dict)  # by test name, since start
    heartbeats: dict[str, int] = field(default_factory=dict)  # by outcome, since start
    skipped_budget: int = 0
    skipped_offline: int = 0
    upload_failures: int = 0  # consecutive
    last_upload: datetime | None = None
    last_heartbeat: datetime | None = None
    reachable: bool | None = None  # the collector, by the last heartbeat
    online: bool | None = None  # the Internet, by the last ladder
    in_event_window: bool = False
    clock_verified: bool = False  # the offset from the collector's clock is known and fresh
    clock_offset: float | None = None  # at the last check, if any
    used_today: int = 0  # bytes, UTC day
    budget: int | None = None  # bytes a day; None: no cap
    latest: dict[str, str] = field(default_factory=dict)  # latest verdict by target
    controls: dict[str, Any] = field(default_factory=dict)  # the last control's answer


class Stateful(Protocol):
    """Anything that can tell its state now (the daemon)."""

    def state(self) -> DaemonState: ...
