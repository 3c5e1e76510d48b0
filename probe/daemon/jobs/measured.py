"""The measurement jobs on a cadence: sites (``target:<url>``), platforms
(``platform:<name>``) and the kinds of test of the registry that have a plan
(``<kind>:<input>``).

All three hold a measurement slot (``schedule.concurrency``) while they measure, run only
within the day's data budget and while the network answers, and are raised inside event
windows. Sites are also paced: the budget is spread over the day (``probe.daemon.pacing``).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from probe.config import probe_config
from probe.daemon import pacing, scheduler
from probe.daemon import traffic as traffic_estimate
from probe.daemon.jobs import log
from probe.nettests import Plan
from probe.nettests.registry import by_name

if TYPE_CHECKING:
    from probe.daemon.jobs import Context

Timed = tuple[str, str, float]  # (job name, journal target, interval)


class TargetJob:
    """One web connectivity measurement of a site, paced over the day."""

    kind = "target"
    metered = True

    def __init__(self) -> None:
        self.reserved = 0  # expected cost of the target measurements running now
        self.costs: dict[str, int] = {}  # each target's last measurement cost, in bytes
        # url -> the target and the cost reserved for it when it was admitted
        self._admitted: dict[str, tuple[probe_config.Target, int]] = {}

    def timed(self, ctx: Context) -> list[Timed]:
        return [(f"target:{url}", url, self.interval(ctx, target))
                for url, target in ctx.targets.items()]

    @staticmethod
    def interval(ctx: Context, target: probe_config.Target) -> float:
        base = target.interval or ctx.config.schedule.interval
        return scheduler.target_interval(base, ctx.config.schedule.event_speedup,
                                         ctx.window is not None)

    def next_due(self, ctx: Context, subject: str, due: float, now: float) -> float | None:
        target = ctx.targets.get(subject)
        if target is None:
            return None  # dropped from the lists since it was planned
        interval = scheduler.jittered(self.interval(ctx, target), ctx.config.schedule.jitter,
                                      ctx.rng)
        return max(due + interval, now)

    async def admit(self, ctx: Context, name: str, subject: str, now: float) -> bool:
        target = ctx.targets.get(subject)
        if target is None or not await ctx.may_measure():
            return False
        if not self.on_pace(ctx, target):
            await self.defer_for_pace(ctx, name, target, now)
            return False
        # Reserved now, before the task runs: the next dispatch sees it, so a burst of due
        # targets cannot overrun the pace before any has finished.
        expected = self.expected_cost(target)
        self.reserved += expected
        self._admitted[subject] = (target, expected)
        return True

    async def run(self, ctx: Context, subject: str) -> int:
        target, reserved = self._admitted.pop(subject)
        return await self.measure(ctx, target, reserved)

    async def measure(self, ctx: Context, target: probe_config.Target,
                      reserved: int = 0) -> int:
        try:
            async with ctx.slots:
                if ctx.stopping:
                    return 0
                measurement = await ctx.measure_target(target, ctx.clock.now())
            self.costs[target.url] = traffic_estimate.estimate(measurement)
            await ctx.record(measurement)
            return 1
        finally:
            self.reserved -= reserved

    def expected_cost(self, target: probe_config.Target) -> int:
        """What measuring ``target`` will likely cost: its last measurement's, else the mean
        of the others', else ``pacing.DEFAULT_COST``."""
        if target.url in self.costs:
            return self.costs[target.url]
        if self.costs:
            return sum(self.costs.values()) // len(self.costs)
        return pacing.DEFAULT_COST

    def on_pace(self, ctx: Context, target: probe_config.Target) -> bool:
        """Whether the day's budget, spread over the day, lets ``target`` go now
        (``probe.daemon.pacing``)."""
        moment = ctx.clock.now()
        seconds = moment.hour * 3600 + moment.minute * 60 + moment.second
        return pacing.may_measure(target, ctx.config.identity.country,
                                  ctx.window is not None, ctx.budget,
                                  ctx.used_today + self.reserved, seconds)

    async def defer_for_pace(self, ctx: Context, name: str, target: probe_config.Target,
                             now: float) -> None:
        """A target held back to spread the budget: the tail is tried again after
        ``pacing.ROTATION``, a priority target at its next turn."""
        if not pacing.is_priority(target, ctx.config.identity.country,
                                  ctx.window is not None):
            ctx.timetable.plan_earlier(name, now + scheduler.jittered(
                pacing.ROTATION, ctx.config.schedule.jitter, ctx.rng))
        ctx.skipped_pace += 1
        await ctx.journal.add_usage(ctx.day, skipped=1)
        if ctx.pace_warned != ctx.day:
            ctx.pace_warned = ctx.day
            log.info("%.1f of %.1f MB used by %s UTC: the priority sites first, the rest in "
                     "rotation, so the budget lasts the day", ctx.used_today / 1e6,
                     (ctx.budget or 0) / 1e6, ctx.clock.now().strftime("%H:%M"))


class PlatformJob:
    """One platform check (Telegram, YouTube, ...) every ``platforms.interval``."""

    kind = "platform"
    metered = True

    def timed(self, ctx: Context) -> list[Timed]:
        return [(f"platform:{platform}", platform, self.interval(ctx))
                for platform in ctx.platform_names]

    @staticmethod
    def interval(ctx: Context) -> float:
        return ctx.sped_up(ctx.config.platforms.interval)

    def next_due(self, ctx: Context, subject: str, due: float, now: float) -> float | None:
        interval = scheduler.jittered(self.interval(ctx), ctx.config.schedule.jitter, ctx.rng)
        return max(due + interval, now)

    async def admit(self, ctx: Context, name: str, subject: str, now: float) -> bool:
        return await ctx.may_measure()

    async def run(self, ctx: Context, subject: str) -> int:
        """Each endpoint of a platform check holds one measurement slot while it is measured
        (a platform has up to ~35 endpoints: as one job they would multiply the concurrency,
        and the memory, by as many)."""
        if ctx.stopping:
            return 0
        measurement = await ctx.measure_platform(subject, ctx.clock.now(), ctx.slots)
        await ctx.record(measurement)
        return 1


class PlannedJob:
    """A kind of test of the registry with a plan (``NetTest.plan``): like a platform, on its
    own interval, within the budget; an input no longer in the plan is not planned again."""

    metered = True

    def __init__(self, kind: str, plan: Plan) -> None:
        self.kind = kind
        self.plan = plan

    def timed(self, ctx: Context) -> list[Timed]:
        return [(f"{self.kind}:{subject}", subject, ctx.sped_up(self.plan.interval))
                for subject in self.plan.inputs]

    def next_due(self, ctx: Context, subject: str, due: float, now: float) -> float | None:
        if subject not in self.plan.inputs:
            return None
        interval = scheduler.jittered(ctx.sped_up(self.plan.interval),
                                      ctx.config.schedule.jitter, ctx.rng)
        return max(due + interval, now)

    async def admit(self, ctx: Context, name: str, subject: str, now: float) -> bool:
        return subject in self.plan.inputs and await ctx.may_measure()

    async def run(self, ctx: Context, subject: str) -> int:
        """One measurement, holding a measurement slot; a measurement that raises or overruns
        its plan's budget is recorded as a ``top_level`` failure, like a site's."""
        async with ctx.slots:
            if ctx.stopping:
                return 0
            started = ctx.clock.now()
            try:
                async with asyncio.timeout(self.plan.budget):
                    measurement = await self.plan.measure(subject, started)
            except Exception as exc:
                from probe.nettests.runner import failed_measurement

                log.exception("%s of %s failed", self.kind, subject)
                test_name = by_name(self.kind).test_names[0]
                measurement = failed_measurement(ctx.config, test_name, subject, exc,
                                                 started)
        await ctx.record(measurement)
        return 1
