"""A clock that jumps, so a day of the daemon's life runs in seconds.

The daemon waits only through ``Clock.sleep``. This clock first lets the daemon finish every
job that runs (``settle``, the daemon's own method), then moves time forward at once, running
the test's alarms ("take the collector away at hour 1") at their moment on the way. Jobs thus
take no simulated time, while everything they do (sockets, SQLite, the collector) is real.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

Action = Callable[[], Awaitable[None]]


class VirtualClock:
    def __init__(self, start: datetime) -> None:
        self.start = start
        self.elapsed = 0.0
        self.settle: Callable[[], Awaitable[None]] | None = None
        self._alarms: list[tuple[float, int, Action]] = []
        self._order = itertools.count()

    def at(self, elapsed: float, action: Action) -> None:
        """Run ``action`` when simulated time reaches ``elapsed`` seconds."""
        heapq.heappush(self._alarms, (elapsed, next(self._order), action))

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.elapsed)

    def monotonic(self) -> float:
        return self.elapsed

    async def sleep(self, seconds: float) -> None:
        if self.settle is not None:
            await self.settle()
        target = self.elapsed + max(0.0, seconds)
        while self._alarms and self._alarms[0][0] <= target:
            moment, _, action = heapq.heappop(self._alarms)
            self.elapsed = max(self.elapsed, moment)
            await action()
        self.elapsed = target
        await asyncio.sleep(0)
