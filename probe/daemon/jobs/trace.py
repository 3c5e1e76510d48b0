"""``trace:<url>``: a censor trace, planned only with CAP_NET_RAW after a measurement found
the URL blocked by name (TLS or HTTP layer), at most once per ``censor_trace.interval`` per
URL and ``censor_trace.daily_max`` per day (``probe.nettests.censor_trace.policy``).

The job keeps the gating state: the requests waiting, when each URL was last traced and how
many traces ran today (the last two survive a restart through the journal).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from probe.daemon import windows
from probe.daemon.jobs import log
from probe.local.journal import CENSOR_TRACES
from probe.nettests.censor_trace import policy as trace_policy

if TYPE_CHECKING:
    from probe.daemon.jobs import Context

Measurement = dict[str, Any]
# A trace starts within this many seconds of the measurement that asked for it: soon enough
# to find the same block, not in the same second as the measurement's own request.
TRACE_DELAY = (5.0, 60.0)


class TraceJob:
    kind = "trace"
    metered = True

    def __init__(self, raw_capable: Callable[[], bool]) -> None:
        self.raw_capable = raw_capable
        self.can_trace = False
        self.wanted: dict[str, trace_policy.TraceRequest] = {}
        self.last_traced: dict[str, datetime] = {}
        self.traced_today = 0
        self.day = ""
        self._admitted: dict[str, trace_policy.TraceRequest] = {}

    async def start(self, ctx: Context, recent: dict[str, list[Any]]) -> None:
        """Traces are planned only when they can run; when each URL was last traced and how
        many traces ran today survive a restart."""
        settings = ctx.config.censor_trace
        self.can_trace = settings.enabled and self.raw_capable()
        if settings.enabled and not self.can_trace:
            log.info("censor traces off: no CAP_NET_RAW (see the systemd unit in the README)")
        for key, verdicts in recent.items():
            if key.startswith(trace_policy.TRACE_KEY_PREFIX):
                moment = windows.parse_time(verdicts[0].start_time)
                if moment is not None:
                    self.last_traced[key.removeprefix(trace_policy.TRACE_KEY_PREFIX)] = moment
        self.day = ctx.today()
        self.traced_today = trace_policy.day_count(await ctx.journal.get(CENSOR_TRACES),
                                                   self.day)

    def next_due(self, ctx: Context, subject: str, due: float, now: float) -> float | None:
        return None  # planned once by the measurement that asked for it; not re-planned

    async def admit(self, ctx: Context, name: str, subject: str, now: float) -> bool:
        request = self.wanted.pop(subject, None)
        if request is not None and self.allowed(ctx, request) and await ctx.may_measure():
            self._admitted[subject] = request
            return True
        return False

    def allowed(self, ctx: Context, request: trace_policy.TraceRequest) -> bool:
        """Still blocked, not traced lately, and today's count not spent."""
        today = ctx.today()
        if today != self.day:
            self.day, self.traced_today = today, 0
        settings = ctx.config.censor_trace
        return (self.can_trace and ctx.latest.get(request.subject) == "blocked"
                and trace_policy.may_trace(self.last_traced.get(request.url), ctx.clock.now(),
                                           settings.interval, self.traced_today,
                                           settings.daily_max))

    def consider(self, ctx: Context, measurement: Measurement) -> None:
        """Plan a trace of what ``measurement`` found blocked by name, if allowed now."""
        for request in trace_policy.candidates(measurement, ctx.platform_names):
            name = f"trace:{request.url}"
            if name in ctx.in_flight or ctx.timetable.due(name) is not None:
                return  # one on its way already
            if self.allowed(ctx, request):
                self.wanted[request.url] = request
                ctx.timetable.plan(name, ctx.clock.monotonic() + ctx.rng.uniform(
                    *TRACE_DELAY))
                return

    async def run(self, ctx: Context, subject: str) -> int:
        request = self._admitted.pop(subject)
        async with ctx.slots:
            if ctx.stopping or not self.allowed(ctx, request):
                return 0
            started = ctx.clock.now()
            # Counted before it runs: a trace that crashes or is cut still sent its packets.
            self.last_traced[request.url] = started
            self.traced_today += 1
            await ctx.journal.set(**{CENSOR_TRACES: f"{self.day} {self.traced_today}"})
            log.info("tracing the censor of a blocked site (%d of %d today)",
                     self.traced_today, ctx.config.censor_trace.daily_max)
            measurement = await ctx.measure_trace(request.url, request.address, started)
        await ctx.record(measurement)
        return 1
