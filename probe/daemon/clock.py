"""Time as a dependency of the daemon: wall time for timestamps, monotonic time for cadence.

The daemon never calls ``time`` or ``asyncio.sleep`` directly: it receives a ``Clock``. In
production that is ``SystemClock``; tests pass a clock that jumps, so a day without a
collector can be simulated in seconds while every measurement still carries the (simulated)
time at which it was taken.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Current wall time, timezone-aware UTC (measurement timestamps, the data budget day)."""

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps back (cadence, backoff)."""

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""


class SystemClock:
    """The real clocks of the machine."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))
