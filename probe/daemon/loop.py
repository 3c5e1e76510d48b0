"""``python -m probe run``: the volunteer's daemon, built to run for months and through
shutdowns.

One loop owns time. It takes the earliest job from the timetable (``probe.daemon.scheduler``),
waits for it on the injected clock, and starts it as a task:

* ``target:<url>``: one web connectivity measurement, under the daemon's one semaphore
  (``schedule.concurrency``), skipped while the day's data budget is spent;
* ``platform:<name>``: one platform check (Telegram, YouTube, ...) every ``platforms.interval``,
  under the same semaphore and budget as the sites, raised inside event windows like them;
* ``trace:<url>``: a censor trace, planned only with CAP_NET_RAW after a measurement found
  the URL blocked by name (TLS or HTTP layer), at most once per ``censor_trace.interval`` per
  URL and ``censor_trace.daily_max`` per day (``probe.nettests.censor_trace.policy``);
* ``<kind>:<input>``: one measurement of a kind of test that runs on its own cadence
  (``probe.nettests.NetTest.plan``, e.g. ``tcp_reachability:host:443``), under the same
  semaphore and budget as the sites, raised inside event windows like them;
* ``ladder``: the connectivity ladder, every ``ladder_interval``, and every
  ``offline_ladder_interval`` (a minute) while the collector does not answer: during a
  shutdown the ladder is what tells a local fault from an international cut;
* ``heartbeat``: every 60 s (30 s inside an event window); its answer carries the event
  windows and the address the collector saw, which joins the scrub list;
* ``upload``: sends the spool in batches while the collector answers, and backs off
  exponentially while it does not.

Every answer of the collector carries its clock (HTTP ``Date``): the probe's clock is checked
against it (``probe.daemon.clock_check``), and measurements taken while that clock is unverified or
off are annotated so, their own timestamps untouched.

Every measurement is scrubbed of the probe's own addresses and committed to the spool before
anything else happens to it; the network only ever sees what the spool holds. SIGTERM and
SIGINT stop the loop, give running measurements a short grace to finish and be spooled, and
close the file cleanly; what was not uploaded waits in the spool for the next start.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import signal
import sqlite3
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from probe.config import probe_config, target_sync
from probe.core.measurement import ooni_time
from probe.core.typed_config import ConfigError
from probe.daemon import announce, heartbeat, pacing, scheduler, traffic, upload, windows
from probe.daemon.clock import Clock, SystemClock
from probe.daemon.clock_check import (
    OFFSET,
    UNVERIFIED,
    ClockWatch,
    describe_offset,
    parse_http_date,
)
from probe.daemon.endpoints import EndpointList, FailoverUploader, configured
from probe.daemon.state import DaemonState
from probe.daemon.uploader import Uploader, UploadError
from probe.local import privacy
from probe.local.journal import (
    ANNOUNCED,
    CENSOR_TRACES,
    CLOCK_CHECKED,
    CLOCK_OFFSET,
    CLOCK_STATUS,
    COLLECTOR_PATH,
    CONTROLS,
    EVENT_WINDOWS,
    LADDER_TARGET,
    LAST_HEARTBEAT,
    LAST_HEARTBEAT_ATTEMPT,
    LAST_HEARTBEAT_ERROR,
    STARTED,
    STOPPED,
    Journal,
    summarise_analysis,
    write_usage,
    write_verdict,
)
from probe.local.localdb import LocalDB, SpoolLock
from probe.local.spool import Depth, Entry, Spool
from probe.nettests import Plan
from probe.nettests.censor_trace import policy as trace_policy
from probe.nettests.registry import NETTESTS, by_name

log = logging.getLogger(__name__)

Measurement = dict[str, Any]
TargetFn = Callable[[probe_config.Target, datetime], Awaitable[Measurement]]
LadderFn = Callable[[datetime], Awaitable[Measurement]]
RoundFn = Callable[[], Awaitable[list[Measurement]]]
PlatformFn = Callable[[str, datetime, asyncio.Semaphore], Awaitable[Measurement]]
TraceFn = Callable[[str, str | None, datetime], Awaitable[Measurement]]

NOTICE_VERSION = 1
SHUTDOWN_GRACE = 10.0
NAP = 5.0
THROTTLING_CHECK = 3600.0  # how often to ask whether throttling tests are due
SUMMARY_INTERVAL = 3600.0  # the hourly summary line in the log
SUMMARY_TARGETS = 10
# A trace starts within this many seconds of the measurement that asked for it: soon enough
# to find the same block, not in the same second as the measurement's own request.
TRACE_DELAY = (5.0, 60.0)
# Unverified measurements remembered for the offset (a week of a ladder a minute and a few
# dozen sites an hour); older ones keep only their clock_unverified mark.
UNVERIFIED_KEPT = 20_000


class ConsentMissing(Exception):
    """The config does not record the volunteer's consent (``python -m probe init``)."""


def read_token(config: probe_config.ProbeConfig, base: Path) -> str | None:
    if config.collector.token:
        return config.collector.token
    if config.collector.token_file:
        # A token file named but missing or empty is a config error (exit 2, which the
        # systemd unit does not restart), not a collector that later answers 401.
        path = Path(config.collector.token_file)
        path = path if path.is_absolute() else base / path
        try:
            token = path.read_text().strip()
        except OSError as exc:
            raise ConfigError("collector.token_file",
                              f"cannot read {path}: {exc.strerror}") from exc
        if not token:
            raise ConfigError("collector.token_file", f"{path} is empty")
        return token
    return None


def require_consent(config: probe_config.ProbeConfig) -> None:
    consent = config.consent
    if not consent.accepted or consent.notice_version < NOTICE_VERSION:
        raise ConsentMissing(
            "this config does not record your consent; run `python -m probe init` to read "
            "what the probe measures and uploads and the risks, and to agree")


def production_measures(config: probe_config.ProbeConfig) -> tuple[TargetFn, LadderFn]:
    """The real checks: web connectivity per target and the connectivity ladder."""
    from probe.nettests import runner as rounds

    control = rounds.control_client(config)
    options = rounds.web_options(config)

    async def target(t: probe_config.Target, started: datetime) -> Measurement:
        return await rounds.measure_target(config, t, control, options, started)

    async def ladder(started: datetime) -> Measurement:
        measurement, _online, _sentence = await rounds.ladder_measurement(config, started)
        return measurement

    return target, ladder


def production_platform_jobs(config: probe_config.ProbeConfig
                             ) -> tuple[tuple[str, ...], PlatformFn, TraceFn]:
    """The platforms to check, the real platform check and the real censor trace."""
    from probe.config import platforms as platform_config
    from probe.nettests import runner as rounds
    from probe.nettests.platforms.measure import PlatformOptions

    file = config.platforms.file
    endpoints = platform_config.load(file) if file is not None else None
    names = config.platforms.names or (tuple(endpoints.platforms) if endpoints else ())
    control = rounds.control_client(config)
    options = PlatformOptions(udp_resolvers=config.resolvers, ca_file=config.ca_file,
                              fingerprint=config.platforms.fingerprint)

    async def platform(name: str, started: datetime, slots: asyncio.Semaphore) -> Measurement:
        assert endpoints is not None  # names come from the file
        return await rounds.measure_platform(config, endpoints, name, control, options,
                                             started, slots)

    async def trace(url: str, address: str | None, started: datetime) -> Measurement:
        return await rounds.measure_trace(config, url, address, started)

    return names, platform, trace


def production_plans(config: probe_config.ProbeConfig) -> dict[str, Plan]:
    """The jobs of the registered kinds of test that run on their own cadence."""
    plans = {kind.name: kind.plan(config) for kind in NETTESTS}
    return {name: plan for name, plan in plans.items() if plan is not None}


def raw_sockets_allowed() -> bool:
    """CAP_NET_RAW, tested by opening a raw socket (no packet is sent, scapy not imported)."""
    from probe.netx.packet import raw_socket_problem

    return raw_socket_problem() is None


async def throttling_round(config: probe_config.ProbeConfig) -> list[Measurement]:
    """The throttling tests that are due (``probe.nettests.throttling.run`` keeps their own cadence
    and byte budget across restarts; this returns nothing when none is due)."""
    from probe.nettests.throttling.run import run_throttling_round

    return await run_throttling_round(config)


class Daemon:
    """The scheduler, the spool and the collector link of one probe."""

    def __init__(
        self,
        config: probe_config.ProbeConfig,
        db: LocalDB,
        uploader: Uploader,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        measure_target: TargetFn | None = None,
        measure_ladder: LadderFn | None = None,
        measure_throttling: RoundFn | None = None,
        measure_platform: PlatformFn | None = None,
        measure_trace: TraceFn | None = None,
        platform_names: tuple[str, ...] | None = None,
        plans: dict[str, Plan] | None = None,
        raw_capable: Callable[[], bool] = raw_sockets_allowed,
        spool: Spool | None = None,
        interface_files: tuple[str, str] = ("/proc/net/fib_trie", "/proc/net/if_inet6"),
        grace: float = SHUTDOWN_GRACE,
        config_path: str | None = None,
    ) -> None:
        self.config = config
        # The file ``config`` came from: read again when the collector announces new target
        # lists, so the new lists combine with the file's own targets as at start.
        self.config_path = config_path
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        if measure_target is None or measure_ladder is None:
            default_target, default_ladder = production_measures(config)
            measure_target = measure_target or default_target
            measure_ladder = measure_ladder or default_ladder
        self._measure_target = measure_target
        self._measure_ladder = measure_ladder
        self._measure_throttling = measure_throttling or (lambda: throttling_round(config))
        if measure_platform is None or measure_trace is None or platform_names is None:
            names, default_platform, default_trace = production_platform_jobs(config)
            measure_platform = measure_platform or default_platform
            measure_trace = measure_trace or default_trace
            platform_names = names if platform_names is None else platform_names
        self._measure_platform = measure_platform
        self._measure_trace = measure_trace
        self.platform_names = platform_names
        # The kinds of test that run on their own cadence (``NetTest.plan``), by kind: one
        # ``<kind>:<input>`` job per input.
        self.plans = plans if plans is not None else production_plans(config)
        self._raw_capable = raw_capable
        self.spool = spool or Spool(db, int(config.spool_max_mb * 1_000_000))
        self.journal = Journal(db)
        self.uploader = uploader
        self.interface_files = interface_files
        self.grace = grace
        self.targets = {t.url: t for t in config.targets}
        self.timetable = scheduler.Timetable()
        self.slots = asyncio.Semaphore(config.schedule.concurrency)
        self.in_flight: dict[str, asyncio.Task[None]] = {}
        self.book = privacy.AddressBook(b"")
        self.budget = traffic.daily_bytes(config.budget.daily_mb)
        self.stopping = False
        self.can_trace = False
        self.trace_wanted: dict[str, trace_policy.TraceRequest] = {}
        self.last_traced: dict[str, datetime] = {}
        self.traced_today = 0
        self.trace_day = ""
        self.clockwatch = ClockWatch(config.clock)
        # Measurements spooled while the clock was unverified: (uid, clock epoch), to be
        # given the offset once it is known (probe.daemon.clock_check).
        self.unverified: deque[tuple[str, int]] = deque(maxlen=UNVERIFIED_KEPT)
        # What the daemon knows now; read by the heartbeat, /metrics and the logs.
        self.reachable: bool | None = None
        self.online: bool | None = None
        self.event_windows: list[windows.Window] = []
        self.window: windows.Window | None = None
        self.day = ""
        self.used_today = 0
        self.depth = Depth(0, 0, None)
        self.counters: dict[str, int] = {}
        self.measured: dict[str, int] = {}
        self.latest: dict[str, str] = {}
        self.skipped_budget = 0
        self.skipped_pace = 0  # targets held back to spread the budget over the day
        # Which control answered last and whether all were unreachable (_note_controls).
        self.controls: dict[str, Any] = {}
        self._summary_measured = 0  # measurements counted at the last hourly summary
        self._reserved = 0  # expected cost of the target measurements running now
        self._costs: dict[str, int] = {}  # each target's last measurement cost, in bytes
        self.skipped_offline = 0
        self.domestic_reachable = False
        self.network_summary = "not measured yet"
        self.heartbeats = {"ok": 0, "failed": 0}
        self.last_heartbeat: datetime | None = None
        self.announced_serial = 0  # of the endpoint announcement applied (probe.daemon.announce)
        self.refused_announcement: object = None
        self.uploads = upload.Uploads(
            config, self.spool, self.journal, uploader, clock=self.clock, rng=self.rng,
            scrub=lambda body: self.book.scrub_measurement(body), plan=self._plan_upload,
            check_clock=self._check_clock, refresh=self._after_batch,
            queued=lambda: self.depth.measurements)
        self._traffic_seen = 0
        self._traffic_pending = 0
        self._budget_warned = ""
        self._pace_warned = ""

    # ----------------------------------------------------------------- life cycle

    async def start(self) -> None:
        """Load what the journal remembers and plan the first jobs."""
        self.stopping = False
        self.book = privacy.AddressBook(await self.journal.address_key(),
                                        await self.journal.address_digests())
        await self._learn_interfaces()
        saved = await self.journal.get(EVENT_WINDOWS)
        if saved:
            self.event_windows = windows.parse(json.loads(saved), self.config.identity.country)
        self.window = windows.active(self.event_windows, self.clock.now())
        await self._load_announcement()
        if isinstance(self.uploader, FailoverUploader):  # after the announced endpoints
            self.uploader.resume(await self.journal.get(COLLECTOR_PATH), self.clock.now())
        await self._refresh_usage()
        await self._refresh_spool()
        # Nothing is known about the clock after a start (it may be a reboot without a
        # real-time clock) until the collector answers.
        self.clockwatch.begin(self.clock.now(), self.clock.monotonic())
        await self.journal.set(**{STARTED: ooni_time(self.clock.now()), STOPPED: None,
                                  CLOCK_STATUS: "unverified"})
        await self.uploader.open()
        now = self.clock.monotonic()
        self.timetable.plan("heartbeat", now)
        self.timetable.plan("ladder", now)
        self.timetable.plan("upload", now + self.config.schedule.upload_interval)
        self.timetable.plan("summary", now + SUMMARY_INTERVAL)
        if self.config.throttling.enabled:
            self.timetable.plan("throttling", now + scheduler.first_delay(
                THROTTLING_CHECK, self.rng))
        recent = await self.journal.recent()
        last_seen = {target: verdicts[0].start_time for target, verdicts in recent.items()}
        self.latest = {target: verdicts[0].verdict or "none"
                       for target, verdicts in recent.items()
                       if target in self.targets or target == LADDER_TARGET
                       or target in self.platform_names
                       or any(target in plan.inputs for plan in self.plans.values())}
        for name, subject, interval in self._measured_jobs():
            self.timetable.plan(name, now + self._first_delay(interval, last_seen.get(subject)))
        await self._start_traces(recent)
        log.info("probe %s started: %d targets, %d measurements waiting in the spool",
                 self.config.identity.probe_id, len(self.targets), self.depth.measurements)

    async def _start_traces(self, recent: dict[str, list[Any]]) -> None:
        """Traces are planned only when they can run; when each URL was last traced and how
        many traces ran today survive a restart."""
        settings = self.config.censor_trace
        self.can_trace = settings.enabled and self._raw_capable()
        if settings.enabled and not self.can_trace:
            log.info("censor traces off: no CAP_NET_RAW (see the systemd unit in the README)")
        for key, verdicts in recent.items():
            if key.startswith(trace_policy.TRACE_KEY_PREFIX):
                moment = windows.parse_time(verdicts[0].start_time)
                if moment is not None:
                    self.last_traced[key.removeprefix(trace_policy.TRACE_KEY_PREFIX)] = moment
        self.trace_day = self._today()
        self.traced_today = trace_policy.day_count(await self.journal.get(CENSOR_TRACES),
                                                   self.trace_day)

    def _first_delay(self, interval: float, last: str | None) -> float:
        """Continue the cadence across restarts: a target measured ten minutes ago with an
        hourly interval is due in fifty minutes, not right away."""
        if last:
            previous = windows.parse_time(last)
            if previous is not None:
                left = interval - (self.clock.now() - previous).total_seconds()
                if 0 < left <= interval:
                    return left
        return scheduler.first_delay(interval, self.rng)

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set; always leaves the spool closed cleanly."""
        await self.start()
        try:
            while not stop.is_set():
                self._refresh_window()
                upcoming = self.timetable.peek()
                if upcoming is None:
                    break
                name, due = upcoming
                wait = due - self.clock.monotonic()
                if wait > 0:
                    await self._wait(stop, wait)
                    continue
                self.timetable.pop()
                await self._dispatch(name, due)
        finally:
            await self.shutdown()

    async def run_once(self) -> None:
        """One pass (heartbeat, ladder, every target, upload) and return: for installers that
        check a fresh setup, and for benchmarks."""
        await self.start()
        try:
            await self._heartbeat()
            await self._ladder()
            if self._sites_reachable():
                await self._once_within_budget()
                if self.config.throttling.enabled and await self._may_measure():
                    await self._throttling()
            else:
                self.skipped_offline += len(self.targets) + len(self.platform_names) + sum(
                    len(plan.inputs) for plan in self.plans.values())
            if self.reachable:
                await self._upload()
            log.info("round done: %s; %d measurements waiting for upload",
                     self.network_summary, self.depth.measurements)
        finally:
            await self.shutdown()

    def _log_summary(self) -> None:
        """One line an hour for the volunteer reading ``journalctl``: what was measured, what
        is blocked now, the data used, what waits for upload."""
        total = sum(self.measured.values())
        hour, self._summary_measured = total - self._summary_measured, total
        blocked = sorted(t for t, v in self.latest.items()
                         if v in ("blocked", "throttled") and t != LADDER_TARGET)
        shown = ", ".join(blocked[:SUMMARY_TARGETS]) or "none"
        if len(blocked) > SUMMARY_TARGETS:
            shown += f" and {len(blocked) - SUMMARY_TARGETS} more"
        budget = f" of {self.budget / 1e6:.0f} MB" if self.budget is not None else ""
        log.info("last hour: %d measurements; blocked or throttled now: %s; %.1f MB used "
                 "today%s; %d measurements waiting for upload", hour, shown,
                 self.used_today / 1e6, budget, self.depth.measurements)

    async def _once_within_budget(self) -> None:
        """Every target and platform once, ``schedule.concurrency`` at a time, checking the
        day's data budget before each group like the daemon checks it before each job: a
        first run on a metered link stops where the budget ends."""
        jobs: list[Callable[[], Awaitable[None]]] = [
            *(partial(self._target, t) for t in self.targets.values()),
            *(partial(self._platform, p) for p in self.platform_names),
            *(partial(self._planned, kind, subject)
              for kind, plan in self.plans.items() for subject in plan.inputs)]
        size = max(1, self.config.schedule.concurrency)
        for index in range(0, len(jobs), size):
            await self._count_traffic()
            if not await self._may_measure():
                # _may_measure counted one skip; the rest of the round is skipped too.
                rest = len(jobs) - index - 1
                if self._sites_reachable():
                    self.skipped_budget += rest
                else:
                    self.skipped_offline += rest
                return
            await asyncio.gather(*(job() for job in jobs[index:index + size]))

    async def shutdown(self) -> None:
        self.stopping = True
        tasks = list(self.in_flight.values())
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=self.grace)
            if pending:
                log.warning("stopping: %d jobs still running after %.0f s are cancelled (%s)",
                            len(pending), self.grace,
                            ", ".join(sorted(t.get_name() for t in pending))[:300])
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self.uploader.close()
        await self._count_traffic()
        if self._traffic_pending:
            await self.journal.add_usage(self._today(), self._traffic_pending)
            self._traffic_pending = 0
        await self.journal.set(**{STOPPED: ooni_time(self.clock.now())})
        log.info("probe stopped; %d measurements wait in the spool", self.depth.measurements)

    async def settle(self) -> None:
        """Wait until no job is running (a simulated clock calls this before it jumps)."""
        while self.in_flight:
            await asyncio.gather(*list(self.in_flight.values()), return_exceptions=True)

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        """Sleep until the next job, at most ``NAP`` seconds (so a job planned earlier by a
        finished task is noticed soon), or until ``stop``."""
        waiters = [asyncio.ensure_future(self.clock.sleep(min(seconds, NAP))),
                   asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)

    def _spawn(self, name: str, job: Awaitable[None]) -> None:
        async def run() -> None:
            try:
                await job
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the probe; it is logged and retried
                log.exception("job %s failed", name)
            finally:
                self.in_flight.pop(name, None)

        self.in_flight[name] = asyncio.create_task(run(), name=name)

    # ------------------------------------------------------------------ dispatch

    def _interval(self, target: probe_config.Target) -> float:
        base = target.interval or self.config.schedule.interval
        return scheduler.target_interval(base, self.config.schedule.event_speedup,
                                         self.window is not None)

    def _platform_interval(self) -> float:
        return self._sped_up(self.config.platforms.interval)

    def _sped_up(self, interval: float) -> float:
        """``interval``, shortened inside an event window like the sites'."""
        return scheduler.target_interval(interval, self.config.schedule.event_speedup,
                                         self.window is not None)

    def _measured_jobs(self) -> list[tuple[str, str, float]]:
        """(job name, journal target, interval) of every measurement job on a cadence: the
        targets, the platforms and the inputs of the kinds of test with a plan."""
        return [*((f"target:{url}", url, self._interval(target))
                  for url, target in self.targets.items()),
                *((f"platform:{platform}", platform, self._platform_interval())
                  for platform in self.platform_names),
                *((f"{kind}:{subject}", subject, self._sped_up(plan.interval))
                  for kind, plan in self.plans.items() for subject in plan.inputs)]

    def _ladder_interval(self) -> float:
        schedule = self.config.schedule
        if self.reachable is not True or self.online is False:
            return schedule.offline_ladder_interval
        if self.window is not None:
            return min(schedule.offline_ladder_interval,
                       schedule.ladder_interval / schedule.event_speedup)
        return schedule.ladder_interval

    def _heartbeat_interval(self) -> float:
        schedule = self.config.schedule
        return schedule.event_heartbeat_interval if self.window else schedule.heartbeat_interval

    async def _dispatch(self, name: str, due: float) -> None:
        """Run the job ``name`` (``kind`` or ``kind:subject``) by its kind's handler."""
        kind, _sep, subject = name.partition(":")
        handler = self._handlers.get(kind)
        if handler is not None:
            await handler(name, subject, due, self.clock.monotonic())
        elif kind in self.plans:
            await self._dispatch_planned(name, kind, subject, due, self.clock.monotonic())

    @property
    def _handlers(self) -> dict[str, Callable[[str, str, float, float], Awaitable[None]]]:
        return {"target": self._dispatch_target, "platform": self._dispatch_platform,
                "trace": self._dispatch_trace, "throttling": self._dispatch_throttling,
                "ladder": self._dispatch_ladder, "heartbeat": self._dispatch_heartbeat,
                "upload": self._dispatch_upload, "summary": self._dispatch_summary}

    async def _dispatch_summary(self, name: str, _subject: str, due: float, now: float) -> None:
        self.timetable.plan(name, now + SUMMARY_INTERVAL)
        self._log_summary()

    async def _dispatch_target(self, name: str, url: str, due: float, now: float) -> None:
        target = self.targets.get(url)
        if target is None:
            return  # dropped from the lists since it was planned
        interval = scheduler.jittered(self._interval(target), self.config.schedule.jitter,
                                      self.rng)
        self.timetable.plan(name, max(due + interval, now))
        if name in self.in_flight:
            return  # still running from last time: never two of one target at once
        if await self._may_measure():
            if self._on_pace(target):
                # Reserved now, before the task runs: the next dispatch sees it, so a
                # burst of due targets cannot overrun the pace before any has finished.
                expected = self._expected_cost(target)
                self._reserved += expected
                self._spawn(name, self._target(target, expected))
            else:
                await self._defer_for_pace(name, target, now)

    async def _dispatch_platform(self, name: str, platform: str, due: float,
                                 now: float) -> None:
        interval = scheduler.jittered(self._platform_interval(),
                                      self.config.schedule.jitter, self.rng)
        self.timetable.plan(name, max(due + interval, now))
        if name not in self.in_flight and await self._may_measure():
            self._spawn(name, self._platform(platform))

    async def _dispatch_planned(self, name: str, kind: str, subject: str, due: float,
                                now: float) -> None:
        """A kind of test with a plan: like a platform, on its own interval, within the
        budget; an input no longer in the plan is not planned again."""
        plan = self.plans[kind]
        if subject not in plan.inputs:
            return
        interval = scheduler.jittered(self._sped_up(plan.interval),
                                      self.config.schedule.jitter, self.rng)
        self.timetable.plan(name, max(due + interval, now))
        if name not in self.in_flight and await self._may_measure():
            self._spawn(name, self._planned(kind, subject))

    async def _dispatch_trace(self, name: str, url: str, due: float, now: float) -> None:
        # Planned once by the measurement that asked for it; not re-planned.
        request = self.trace_wanted.pop(url, None)
        if (request is not None and name not in self.in_flight
                and self._trace_allowed(request) and await self._may_measure()):
            self._spawn(name, self._trace(request))

    async def _dispatch_throttling(self, name: str, _subject: str, due: float,
                                   now: float) -> None:
        self.timetable.plan(name, now + THROTTLING_CHECK)
        await self._refresh_usage()
        if name in self.in_flight or not self._sites_reachable():
            return
        if self.budget is not None and self.used_today >= self.budget:
            await self._skip_for_budget()
            return
        self._spawn(name, self._throttling())

    async def _dispatch_ladder(self, name: str, _subject: str, due: float, now: float) -> None:
        self.timetable.plan(name, now + self._ladder_interval())
        if name not in self.in_flight:
            self._spawn(name, self._ladder())

    async def _dispatch_heartbeat(self, name: str, _subject: str, due: float,
                                  now: float) -> None:
        self.timetable.plan(name, now + self._heartbeat_interval())
        if name not in self.in_flight:
            self._spawn(name, self._heartbeat())

    async def _dispatch_upload(self, name: str, _subject: str, due: float, now: float) -> None:
        if name in self.in_flight:
            self.timetable.plan(name, now + self.config.schedule.upload_interval)
        elif self.reachable is not True:
            # Heartbeats find out when the collector is back and pull the upload forward.
            self.timetable.plan(name, now + self.config.schedule.upload_interval)
        else:
            self._spawn(name, self._upload())

    async def _may_measure(self) -> bool:
        """False (and the skip counted) while nothing answers or the day's budget is spent."""
        if not self._sites_reachable():
            self.skipped_offline += 1
            return False
        await self._refresh_usage()
        if self.budget is not None and self.used_today >= self.budget:
            await self._skip_for_budget()
            return False
        return True

    def _on_pace(self, target: probe_config.Target) -> bool:
        """Whether the day's budget, spread over the day, lets ``target`` go now
        (``probe.daemon.pacing``)."""
        moment = self.clock.now()
        seconds = moment.hour * 3600 + moment.minute * 60 + moment.second
        return pacing.may_measure(target, self.config.identity.country,
                                  self.window is not None, self.budget,
                                  self.used_today + self._reserved, seconds)

    async def _defer_for_pace(self, name: str, target: probe_config.Target,
                              now: float) -> None:
        """A target held back to spread the budget: the tail is tried again after
        ``pacing.ROTATION``, a priority target at its next turn."""
        if not pacing.is_priority(target, self.config.identity.country,
                                  self.window is not None):
            self.timetable.plan_earlier(name, now + scheduler.jittered(
                pacing.ROTATION, self.config.schedule.jitter, self.rng))
        self.skipped_pace += 1
        await self.journal.add_usage(self.day, skipped=1)
        if self._pace_warned != self.day:
            self._pace_warned = self.day
            log.info("%.1f of %.1f MB used by %s UTC: the priority sites first, the rest in "
                     "rotation, so the budget lasts the day", self.used_today / 1e6,
                     (self.budget or 0) / 1e6, self.clock.now().strftime("%H:%M"))

    def _sites_reachable(self) -> bool:
        """False only when nothing answers: the ladder found neither foreign nor domestic
        hosts and the collector does not answer either. Then every site would fail the same
        way, so they wait and the ladder (every minute) records the outage. Any sign of a
        working network (a domestic host, the collector) and sites are measured: a blocked
        anycast resolver must not silence the probe."""
        return not (self.online is False and self.reachable is False
                    and not self.domestic_reachable)

    async def _skip_for_budget(self) -> None:
        self.skipped_budget += 1
        await self.journal.add_usage(self.day, skipped=1)
        if self._budget_warned != self.day:
            self._budget_warned = self.day
            log.warning("data budget of %.1f MB for %s is spent; sites are measured again "
                        "tomorrow (UTC), the connectivity ladder and uploads go on",
                        (self.budget or 0) / 1e6, self.day)

    def _refresh_window(self) -> None:
        current = windows.active(self.event_windows, self.clock.now())
        if (current is None) == (self.window is None):
            self.window = current
            return
        self.window = current
        if current is None:
            log.info("event window over; back to the normal cadence")
            return
        log.info("inside event window %r until %s: measuring %.0fx as often", current.name,
                 ooni_time(current.end), self.config.schedule.event_speedup)
        now = self.clock.monotonic()
        for name, _subject, interval in self._measured_jobs():
            self.timetable.plan_earlier(name, now + self.rng.uniform(0, interval))
        self.timetable.plan_earlier("heartbeat", now + self._heartbeat_interval())
        self.timetable.plan_earlier("ladder", now + self._ladder_interval())

    # ---------------------------------------------------------------------- jobs

    async def _target(self, target: probe_config.Target, reserved: int = 0) -> None:
        try:
            async with self.slots:
                if self.stopping:
                    return
                measurement = await self._measure_target(target, self.clock.now())
            self._costs[target.url] = traffic.estimate(measurement)
            await self.record(measurement)
        finally:
            self._reserved -= reserved

    def _expected_cost(self, target: probe_config.Target) -> int:
        """What measuring ``target`` will likely cost: its last measurement's, else the mean
        of the others', else ``pacing.DEFAULT_COST``."""
        if target.url in self._costs:
            return self._costs[target.url]
        if self._costs:
            return sum(self._costs.values()) // len(self._costs)
        return pacing.DEFAULT_COST

    async def _platform(self, name: str) -> None:
        """Each endpoint of a platform check holds one measurement slot while it is measured
        (a platform has up to ~35 endpoints: as one job they would multiply the concurrency,
        and the memory, by as many)."""
        if self.stopping:
            return
        measurement = await self._measure_platform(name, self.clock.now(), self.slots)
        await self.record(measurement)

    async def _planned(self, kind: str, subject: str) -> None:
        """One measurement of a kind of test with a plan, holding a measurement slot; a
        measurement that raises or overruns its plan's budget is recorded as a ``top_level``
        failure, like a site's."""
        plan = self.plans[kind]
        async with self.slots:
            if self.stopping:
                return
            started = self.clock.now()
            try:
                async with asyncio.timeout(plan.budget):
                    measurement = await plan.measure(subject, started)
            except Exception as exc:
                from probe.nettests.runner import failed_measurement

                log.exception("%s of %s failed", kind, subject)
                test_name = by_name(kind).test_names[0]
                measurement = failed_measurement(self.config, test_name, subject, exc,
                                                 started)
        await self.record(measurement)

    def _trace_allowed(self, request: trace_policy.TraceRequest) -> bool:
        """Still blocked, not traced lately, and today's count not spent."""
        today = self._today()
        if today != self.trace_day:
            self.trace_day, self.traced_today = today, 0
        settings = self.config.censor_trace
        return (self.can_trace and self.latest.get(request.subject) == "blocked"
                and trace_policy.may_trace(self.last_traced.get(request.url), self.clock.now(),
                                           settings.interval, self.traced_today,
                                           settings.daily_max))

    def _consider_traces(self, measurement: Measurement) -> None:
        """Plan a trace of what ``measurement`` found blocked by name, if allowed now."""
        for request in trace_policy.candidates(measurement, self.platform_names):
            name = f"trace:{request.url}"
            if name in self.in_flight or self.timetable.due(name) is not None:
                return  # one on its way already
            if self._trace_allowed(request):
                self.trace_wanted[request.url] = request
                self.timetable.plan(name, self.clock.monotonic() + self.rng.uniform(
                    *TRACE_DELAY))
                return

    async def _trace(self, request: trace_policy.TraceRequest) -> None:
        async with self.slots:
            if self.stopping or not self._trace_allowed(request):
                return
            started = self.clock.now()
            # Counted before it runs: a trace that crashes or is cut still sent its packets.
            self.last_traced[request.url] = started
            self.traced_today += 1
            await self.journal.set(**{CENSOR_TRACES: f"{self.trace_day} {self.traced_today}"})
            log.info("tracing the censor of a blocked site (%d of %d today)",
                     self.traced_today, self.config.censor_trace.daily_max)
            measurement = await self._measure_trace(request.url, request.address, started)
        await self.record(measurement)

    async def _throttling(self) -> None:
        """Throttling tests hold one measurement slot for their whole round: they move real
        volume, and their timings must not compete with other measurements for the link."""
        async with self.slots:
            if self.stopping:
                return
            measurements = await self._measure_throttling()
        for measurement in measurements:
            await self.record(measurement)

    async def _ladder(self) -> None:
        measurement = await self._measure_ladder(self.clock.now())
        keys = measurement.get("test_keys", {})
        analysis = keys.get("analysis", {})
        domestic = (keys.get("rungs") or {}).get("domestic") or {}
        self.domestic_reachable = domestic.get("reachable") is True
        online = analysis.get("online")
        self.network_summary = str(analysis.get("summary") or "unknown")
        if isinstance(online, bool) and online != self.online:
            log.info("network: %s", analysis.get("summary"))
            if online and self.online is False:
                # Back online: measure every site soon rather than at its next slot.
                now = self.clock.monotonic()
                for name, _subject, interval in self._measured_jobs():
                    self.timetable.plan_earlier(
                        name, now + scheduler.first_delay(interval, self.rng))
            self.online = online
        await self._learn_interfaces()
        await self.record(measurement)

    async def record(self, measurement: Measurement) -> None:
        """Annotate the clock's state, scrub, spool, and note the verdict and the traffic of
        one measurement."""
        self._note_clock_jump()
        marks = self.clockwatch.annotations(self.clock.monotonic())
        if marks:
            measurement["annotations"] = {**(measurement.get("annotations") or {}), **marks}
            if UNVERIFIED in marks:
                self.unverified.append((str(measurement["measurement_uid"]),
                                        self.clockwatch.epoch))
        text = self.book.scrub_measurement(json.dumps(measurement, ensure_ascii=False,
                                                      separators=(",", ":")))
        entry = Entry(uid=str(measurement["measurement_uid"]),
                      test_name=str(measurement["test_name"]),
                      input=measurement.get("input"),
                      start_time=str(measurement["measurement_start_time"]), body=text)
        verdict = summarise_analysis(measurement)
        day = self._today()
        cost, self._traffic_pending = traffic.estimate(measurement) + self._traffic_pending, 0
        used: list[int] = []

        def note(db: sqlite3.Connection) -> None:
            write_verdict(db, verdict)
            used.append(write_usage(db, day, cost, 1))

        evicted = await self.spool.put([entry], also=note)
        if evicted:
            log.warning("spool full (%.0f MB): evicted the %d oldest measurements",
                        self.config.spool_max_mb, evicted)
        self.latest[verdict.target] = verdict.verdict or "none"
        self.used_today = used[0] if used else self.used_today
        if self.can_trace:
            self._consider_traces(measurement)
        await self._note_controls(measurement)
        self.measured[entry.test_name] = self.measured.get(entry.test_name, 0) + 1
        await self._refresh_spool()
        log.debug("measured %s: spool holds %d", entry.input or entry.test_name,
                  self.depth.measurements)
        if self.reachable and self.depth.measurements >= self.uploads.batch_limit:
            self.timetable.plan_earlier("upload", self.clock.monotonic())

    async def _heartbeat(self) -> None:
        now = self.clock.now()
        body = self._heartbeat_body(now)
        try:
            answer = await self.uploader.heartbeat(body)
        except UploadError as exc:
            self.heartbeats["failed"] += 1
            if self.reachable is not False:
                log.warning("collector unreachable (%s); measuring on and keeping everything "
                            "in the spool", exc)
                self.timetable.plan_earlier(
                    "ladder", self.clock.monotonic() + self.config.schedule.offline_ladder_interval)
            self.reachable = False
            # Unverified again once the last check is too old (probe.daemon.clock_check).
            await self.journal.set(**{LAST_HEARTBEAT_ATTEMPT: ooni_time(now),
                                      LAST_HEARTBEAT_ERROR: str(exc)[:300],
                                      CLOCK_STATUS: self.clockwatch.status(
                                          self.clock.monotonic())})
            await self._count_traffic()
            return
        self.heartbeats["ok"] += 1
        self.last_heartbeat = now
        # Before the upload is pulled forward: what waits in the spool gets the clock's
        # offset first, if it was taken while the clock was unverified.
        clock_state = await self._check_clock(now)
        if self.reachable is not True:
            log.info("collector reachable; %d measurements to upload", self.depth.measurements)
            self.uploads.failures = 0
            self.timetable.plan_earlier("upload", self.clock.monotonic())
        self.reachable = True
        await self.journal.set(**{LAST_HEARTBEAT: ooni_time(now),
                                  LAST_HEARTBEAT_ATTEMPT: ooni_time(now),
                                  LAST_HEARTBEAT_ERROR: None, **clock_state,
                                  **upload.path_state(self.uploader, now)})
        observed = answer.get("observed_address")
        if isinstance(observed, str):
            await self._learn([observed], only_identifying=False)
        if "event_windows" in answer:
            told = windows.parse(answer["event_windows"], self.config.identity.country)
            if told != self.event_windows:
                self.event_windows = told
                await self.journal.set(**{EVENT_WINDOWS: json.dumps(windows.to_wire(told))})
        if announce.FIELD in answer:
            await self._consider_announcement(answer[announce.FIELD], now)
        announced = answer.get("targets_version")
        if isinstance(announced, str) and self.config_path is not None and \
                self.config.target_sync.enabled and "target_lists" not in self.in_flight and \
                announced != target_sync.cached_version(self.config):
            self._spawn("target_lists", self._refresh_targets())
        await self._count_traffic()

    async def _refresh_targets(self) -> None:
        """Fetch the lists the collector announced and measure them from now on: new targets
        are planned like targets at start, dropped ones are planned no more. A fetch that
        fails keeps the lists the probe has (``probe.config.target_sync``)."""
        assert self.config_path is not None
        # Through the uploader's endpoints, announced ones too, sharing its failover memory.
        shared = self.uploader.endpoints if isinstance(self.uploader, FailoverUploader) else None
        log.info("%s", await target_sync.refresh(self.config, self.uploader.token,
                                                 traffic=self._add_traffic, endpoints=shared))
        try:
            fresh = probe_config.load(self.config_path)
        except ConfigError as exc:  # the file changed under the daemon: keep what runs
            log.warning("target lists not applied: %s", exc)
            return
        self._replace_targets(fresh.targets)

    def _replace_targets(self, targets: tuple[probe_config.Target, ...]) -> None:
        now = self.clock.monotonic()
        before = self.targets
        self.targets = {t.url: t for t in targets}
        self.config = replace(self.config, targets=targets)
        for url in before.keys() - self.targets.keys():
            self.timetable.remove(f"target:{url}")
        added = [url for url in self.targets if url not in before]
        for url in added:
            self.timetable.plan(f"target:{url}", now + self._first_delay(
                self._interval(self.targets[url]), None))
        log.info("target lists changed: %d targets (%d new, %d dropped)", len(self.targets),
                 len(added), len(before.keys() - self.targets.keys()))

    async def _load_announcement(self) -> None:
        """Put the endpoints of the last applied announcement back after a restart (it was
        verified when it came; an expired one is still a better guess than none)."""
        saved = await self.journal.get(ANNOUNCED)
        if not saved or not isinstance(self.uploader, FailoverUploader):
            return
        try:
            kept = announce.kept(saved)
        except announce.AnnouncementError as exc:
            log.warning("kept endpoint announcement not used: %s", exc)
            return
        self.announced_serial = kept.serial
        self.uploader.endpoints.announce(kept.endpoints)

    async def _consider_announcement(self, message: object, now: datetime) -> None:
        """Apply a signed endpoint announcement of a heartbeat answer (probe.daemon.announce);
        anything not signed by the operator's key, older or expired is refused and logged."""
        key = self.config.collector.announce_key
        if key is None or not isinstance(self.uploader, FailoverUploader):
            return
        try:
            found = announce.verify(message, key, now, self.announced_serial)
        except announce.AnnouncementError as exc:
            if message != self.refused_announcement:  # once per distinct message
                log.warning("endpoint announcement refused: %s", exc)
                self.refused_announcement = message
            return
        self.uploader.endpoints.announce(found.endpoints)
        self.announced_serial = found.serial
        await self.journal.set(**{ANNOUNCED: found.to_json()})
        log.info("collector announced endpoints (serial %d): %s", found.serial,
                 ", ".join(e.name for e in found.endpoints))

    async def _note_controls(self, measurement: Measurement) -> None:
        """Keep which control answered the last web measurement, and whether every control
        was unreachable (``probe.nettests.control_client``), for heartbeats and ``probe status``."""
        keys = measurement.get("test_keys")
        if measurement.get("test_name") != "web_connectivity" or not isinstance(keys, dict) \
                or "x_controls_blocked" not in keys:
            return
        state = {"endpoint": keys.get("x_control_endpoint"), "path": keys.get("x_control_path"),
                 "blocked": bool(keys.get("x_controls_blocked"))}
        if state != {k: self.controls.get(k) for k in state}:
            self.controls = {**state, "at": ooni_time(self.clock.now())}
            await self.journal.set(**{CONTROLS: json.dumps(self.controls)})

    def _heartbeat_body(self, now: datetime) -> dict[str, Any]:
        return heartbeat.body(self.config, self.uploader, self.state(), now)

    def state(self) -> DaemonState:
        """What the daemon knows now, for the local metrics and the heartbeat."""
        last_check = self.clockwatch.last
        return DaemonState(
            depth=self.depth, counters=dict(self.counters), measured=dict(self.measured),
            heartbeats=dict(self.heartbeats), skipped_budget=self.skipped_budget,
            skipped_offline=self.skipped_offline, upload_failures=self.upload_failures,
            last_upload=self.last_upload, last_heartbeat=self.last_heartbeat,
            reachable=self.reachable, online=self.online,
            in_event_window=self.window is not None,
            clock_verified=self.clockwatch.current(self.clock.monotonic()) is not None,
            clock_offset=last_check.offset if last_check else None,
            used_today=self.used_today, budget=self.budget, latest=dict(self.latest),
            controls=dict(self.controls))

    async def _upload(self) -> None:
        await self.uploads.drain(lambda: self.stopping)

    async def _after_batch(self) -> None:
        await self._refresh_spool()
        await self._count_traffic()

    def _plan_upload(self, delay: float) -> None:
        self.timetable.plan("upload", self.clock.monotonic() + delay)

    @property
    def upload_failures(self) -> int:
        return self.uploads.failures

    @property
    def last_upload(self) -> datetime | None:
        return self.uploads.last

    # --------------------------------------------------------------------- clock

    def _note_clock_jump(self) -> None:
        step = self.clockwatch.jumped(self.clock.now(), self.clock.monotonic())
        if step is not None:
            self.unverified.clear()  # taken on a clock that is no more: no offset fits them
            log.warning("the system clock jumped by %s (NTP, or set by hand); measurements "
                        "are marked unverified until the collector's clock is read again",
                        describe_offset(step))

    async def _check_clock(self, sent: datetime) -> dict[str, str | None]:
        """Compare the clock with the ``Date`` of the collector's answer to a request sent at
        ``sent``; returns the journal keys to write with the caller's own."""
        server = parse_http_date(self.uploader.server_date)
        if server is None:
            return {}
        self._note_clock_jump()
        mono = self.clock.monotonic()
        before = self.clockwatch.status(mono)
        check = self.clockwatch.observe(server, sent, self.clock.now(), mono)
        status = self.clockwatch.status(mono)
        if status == "off" and before != "off":
            log.warning("this device's clock differs from the collector's by %s; "
                        "measurements keep their own times and carry the offset "
                        "(annotation %s)", describe_offset(check.offset), OFFSET)
        elif status == "ok" and before != "ok":
            log.info("clock checked against the collector's: offset %s",
                     describe_offset(check.offset))
        await self._annotate_unverified(check.offset)
        return {CLOCK_STATUS: status, CLOCK_OFFSET: f"{check.offset:.1f}",
                CLOCK_CHECKED: ooni_time(check.at)}

    async def _annotate_unverified(self, offset: float) -> None:
        """Give the offset just measured to the still-spooled measurements taken while the
        clock was unverified, if the clock has not jumped since (same epoch)."""
        epoch = self.clockwatch.epoch
        uids = {uid for uid, taken in self.unverified if taken == epoch}
        self.unverified.clear()
        if not uids:
            return
        value = f"{offset:.1f}"

        def annotate(body: str) -> str:
            document = json.loads(body)
            document["annotations"] = {**(document.get("annotations") or {}), OFFSET: value}
            return json.dumps(document, ensure_ascii=False, separators=(",", ":"))

        changed = await self.spool.rewrite_some(uids, annotate)
        if changed:
            log.info("%d measurements taken while the clock was unverified now carry its "
                     "offset (%s); their times are as measured", changed,
                     describe_offset(offset))

    # ------------------------------------------------------------------ helpers

    def _today(self) -> str:
        return self.clock.now().strftime("%Y-%m-%d")

    async def _refresh_usage(self) -> None:
        today = self._today()
        if today != self.day:
            self.day = today
            self.used_today = (await self.journal.usage(today))[0]

    async def _count_traffic(self) -> None:
        """Add the collector link's traffic to today's use: in memory now, on disk with the
        next measurement (one commit per minute less on an SD card)."""
        delta = self.uploader.traffic - self._traffic_seen
        if delta > 0:
            self._traffic_seen = self.uploader.traffic
            self._traffic_pending += delta
            self.used_today += delta

    def _add_traffic(self, size: int) -> None:
        """Traffic of the daemon's own requests outside the uploader (the target lists)."""
        self._traffic_pending += size
        self.used_today += size

    async def _refresh_spool(self) -> None:
        self.depth = await self.spool.depth()
        self.counters = await self.spool.counters()

    async def _learn_interfaces(self) -> None:
        await self._learn(privacy.interface_addresses(*self.interface_files),
                          only_identifying=True)

    async def _learn(self, addresses: list[str], only_identifying: bool) -> None:
        new: list[str] = []
        for address in addresses:
            new.extend(self.book.learn(address, only_identifying=only_identifying))
        if not new:
            return
        await self.journal.add_address_digests(new)
        # Measurements spooled before this address was known are scrubbed now, on disk.
        changed = await self.spool.rewrite(self.book.scrub_measurement)
        log.info("learned a new own address; scrubbed it from %d spooled measurements",
                 changed)


async def run_daemon(config_path: str, once: bool = False) -> int:
    """Entry point of ``python -m probe run``; returns the process exit code."""
    config = probe_config.load(config_path)
    require_consent(config)
    token = read_token(config, Path.cwd())
    # Before anything is opened: a second daemon on the same spool stops here (SpoolLocked).
    lock = SpoolLock.acquire(config.spool_path)
    try:
        return await _run_locked(config, token, once, config_path)
    finally:
        lock.release()


async def _run_locked(config: probe_config.ProbeConfig, token: str | None, once: bool,
                      config_path: str | None = None) -> int:
    from probe.local import logs

    handler = logs.setup(config.log_level, secrets=[token or ""])
    db = await LocalDB.open(config.spool_path)
    link = config.collector
    uploader = FailoverUploader(
        EndpointList(configured(link.url, link.endpoints), link.retry_first_after),
        token, link.ca_file, proxy=link.proxy)
    daemon = Daemon(config, db, uploader, config_path=config_path)
    metrics_server = None
    try:
        if config.metrics_listen:
            from probe.daemon.local_metrics import MetricsServer

            metrics_server = MetricsServer(daemon, config.metrics_listen)
            await metrics_server.start()
        if once:
            await daemon.run_once()
            return 0
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await daemon.run(stop)
        return 0
    finally:
        if metrics_server is not None:
            await metrics_server.stop()
        await db.close()
        logging.getLogger().removeHandler(handler)

