"""``ladder``: the connectivity ladder, every ``ladder_interval``, and every
``offline_ladder_interval`` (a minute) while the collector does not answer: during a shutdown
the ladder is what tells a local fault from an international cut. Not metered: it goes on
when the day's budget is spent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from probe.daemon import scheduler
from probe.daemon.jobs import log

if TYPE_CHECKING:
    from probe.daemon.jobs import Context


class LadderJob:
    kind = "ladder"
    metered = False

    @staticmethod
    def interval(ctx: Context) -> float:
        schedule = ctx.config.schedule
        if ctx.reachable is not True or ctx.online is False:
            return schedule.offline_ladder_interval
        if ctx.window is not None:
            return min(schedule.offline_ladder_interval,
                       schedule.ladder_interval / schedule.event_speedup)
        return schedule.ladder_interval

    def next_due(self, ctx: Context, subject: str, due: float, now: float) -> float | None:
        return now + self.interval(ctx)

    async def admit(self, ctx: Context, name: str, subject: str, now: float) -> bool:
        return True

    async def run(self, ctx: Context, subject: str) -> int:
        measurement = await ctx.measure_ladder(ctx.clock.now())
        keys = measurement.get("test_keys", {})
        analysis = keys.get("analysis", {})
        domestic = (keys.get("rungs") or {}).get("domestic") or {}
        ctx.domestic_reachable = domestic.get("reachable") is True
        online = analysis.get("online")
        ctx.network_summary = str(analysis.get("summary") or "unknown")
        if isinstance(online, bool) and online != ctx.online:
            log.info("network: %s", analysis.get("summary"))
            if online and ctx.online is False:
                # Back online: measure every site soon rather than at its next slot.
                now = ctx.clock.monotonic()
                for name, _subject, interval in ctx.measured_jobs():
                    ctx.timetable.plan_earlier(
                        name, now + scheduler.first_delay(interval, ctx.rng))
            ctx.online = online
        await ctx.learn_interfaces()
        await ctx.record(measurement)
        return 1
