"""``throttling``: asks every ``THROTTLING_CHECK`` whether throttling tests are due
(``probe.nettests.throttling.run`` keeps their cadence across restarts) and runs them within
the day's data budget."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from probe.daemon.jobs import Context

THROTTLING_CHECK = 3600.0  # how often to ask whether throttling tests are due


class ThrottlingJob:
    kind = "throttling"
    metered = True

    def next_due(self, ctx: Context, subject: str, due: float, now: float) -> float | None:
        return now + THROTTLING_CHECK

    async def admit(self, ctx: Context, name: str, subject: str, now: float) -> bool:
        await ctx.refresh_usage()
        if not ctx.sites_reachable():
            return False
        if ctx.budget is not None and ctx.used_today >= ctx.budget:
            await ctx.skip_for_budget()
            return False
        return True

    async def run(self, ctx: Context, subject: str) -> int:
        """Throttling tests hold one measurement slot for their whole round: they move real
        volume, and their timings must not compete with other measurements for the link."""
        async with ctx.slots:
            if ctx.stopping:
                return 0
            measurements = await ctx.measure_throttling()
        for measurement in measurements:
            await ctx.record(measurement)
        return len(measurements)
