"""The daemon's jobs: one object per kind of work the loop schedules.

The timetable (``probe.daemon.scheduler``) holds job names, ``<kind>`` or ``<kind>:<subject>``
(``target:<url>``, ``platform:telegram``, ``tcp_reachability:host:443``, ``ladder``). When a
name is due the loop asks the job of its kind three things, in this order:

* ``next_due``: when the name is due again (``None``: not planned again, e.g. a trace, a
  target dropped from the lists, or an upload that plans its own next try);
* ``admit``: whether it runs now. Here a job applies what it costs: a job that moves
  measurement traffic (``metered``) runs only while the day's data budget allows it and the
  network answers, and counts the skip when not; the ladder, heartbeats and uploads are not
  metered, they are what shutdown detection needs;
* ``run``: the work itself, as a task, never two of one name at once; it returns how many
  measurements it recorded.

The kinds of test that run on their own cadence come from the nettest registry
(``probe.nettests.registry``, ``NetTest.plan``): ``probe.daemon.jobs.measured.PlannedJob`` runs
any of them, so a new kind of test needs no edit here or in the loop.

Jobs read and change what the daemon knows through the daemon itself (the ``Context``): the
clock, the timetable, the measurement slots, the budget, ``record``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from probe.daemon.loop import Daemon as Context

__all__ = ["Context", "Job", "log"]

# The daemon's log lines keep the one name volunteers read in ``journalctl``.
log = logging.getLogger("probe.daemon.loop")


class Job(Protocol):
    """One kind of work of the daemon (see the module's docstring)."""

    kind: str
    metered: bool  # counted in, and held back by, the day's data budget

    def next_due(self, ctx: Context, subject: str, due: float, now: float) -> float | None:
        """When ``<kind>:<subject>`` is due again, on the monotonic clock; None: not again."""
        ...

    async def admit(self, ctx: Context, name: str, subject: str, now: float) -> bool:
        """Whether the job runs now (budget, pace, policy); a skip is counted here."""
        ...

    async def run(self, ctx: Context, subject: str) -> int:
        """Do the work; returns the number of measurements recorded."""
        ...
