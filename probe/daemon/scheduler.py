"""When each job of the daemon is due: a timetable and the cadence rules, without any I/O.

Jobs have names: ``target:<url>`` for each target, ``ladder``, ``heartbeat`` and ``upload``.
Times are seconds on the daemon's monotonic clock. The cadence rules are pure functions so
they can be tested on tables:

* a target is measured every ``interval`` (its own, or the schedule's), divided by
  ``event_speedup`` inside an event window, with a uniform jitter of +-``jitter`` so that
  probes do not fall into lockstep and a censor cannot predict them;
* the first measurement of each target after a start is spread over the first few minutes,
  so a reboot does not fire every target at once;
* uploads back off exponentially after failures, with jitter, and never wait less than what
  the collector asked for with ``Retry-After``.
"""

from __future__ import annotations

import heapq
import itertools
import random

FIRST_SPREAD_MAX = 300.0


def target_interval(base: float, speedup: float, in_window: bool) -> float:
    return base / speedup if in_window else base


def jittered(interval: float, jitter: float, rng: random.Random) -> float:
    """``interval`` scaled by a uniform factor in [1 - jitter, 1 + jitter]."""
    return interval * (1.0 + rng.uniform(-jitter, jitter))


def first_delay(interval: float, rng: random.Random) -> float:
    """Delay of a target's first measurement after start: uniform over the first interval,
    but never more than five minutes."""
    return rng.uniform(0.0, min(interval, FIRST_SPREAD_MAX))


def backoff(failures: int, minimum: float, maximum: float, rng: random.Random,
            retry_after: float | None = None) -> float:
    """Seconds to wait after ``failures`` consecutive failed uploads (``failures`` >= 1):
    ``minimum`` doubled per failure up to ``maximum``, +-20 % jitter, at least ``retry_after``.
    """
    base = min(maximum, minimum * 2.0 ** max(0, failures - 1))
    delay = base * rng.uniform(0.8, 1.2)
    return max(delay, retry_after or 0.0)


class Timetable:
    """The next due time of each named job; the earliest comes out first.

    Re-planning a job pushes a new entry and leaves the old one in the heap; stale entries
    are skipped when they surface (cheaper than removing from the middle of a heap).
    """

    def __init__(self) -> None:
        self._due: dict[str, float] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._order = itertools.count()

    def plan(self, name: str, due: float) -> None:
        self._due[name] = due
        heapq.heappush(self._heap, (due, next(self._order), name))

    def plan_earlier(self, name: str, due: float) -> None:
        """Plan ``name`` at ``due`` unless it is already planned sooner."""
        if name not in self._due or due < self._due[name]:
            self.plan(name, due)

    def due(self, name: str) -> float | None:
        return self._due.get(name)

    def remove(self, name: str) -> None:
        """Plan ``name`` no more (its heap entry becomes stale and is skipped)."""
        self._due.pop(name, None)

    def names(self) -> list[str]:
        return list(self._due)

    def _drop_stale(self) -> None:
        while self._heap:
            due, _, name = self._heap[0]
            if self._due.get(name) == due:
                return
            heapq.heappop(self._heap)

    def peek(self) -> tuple[str, float] | None:
        self._drop_stale()
        if not self._heap:
            return None
        due, _, name = self._heap[0]
        return name, due

    def pop(self) -> str:
        """Remove and return the earliest job; it is no longer planned until planned again."""
        self._drop_stale()
        _, _, name = heapq.heappop(self._heap)
        del self._due[name]
        return name
