"""``python -m probe run``: the volunteer's daemon, built to run for months and through
shutdowns.

One loop owns time. It takes the earliest job from the timetable (``probe.daemon.scheduler``),
waits for it on the injected clock, and hands it to the job object of its kind
(``probe.daemon.jobs``), which says when it is due again, whether it runs now (the day's data
budget, pacing, trace gating) and runs it as a task:

* ``target:<url>``, ``platform:<name>`` and ``<kind>:<input>`` (a kind of test of the registry
  with a plan, ``probe.nettests.NetTest.plan``): measurements on a cadence, under the daemon's
  one semaphore (``schedule.concurrency``) and budget, raised inside event windows
  (``probe.daemon.jobs.measured``);
* ``trace:<url>``: a censor trace of what a measurement found blocked by name
  (``probe.daemon.jobs.trace``);
* ``throttling``: the throttling tests, when due (``probe.daemon.jobs.throttling``);
* ``ladder``: the connectivity ladder, faster while the collector does not answer
  (``probe.daemon.jobs.ladder``);
* ``heartbeat`` and ``upload``: the collector link, as services (``probe.daemon.heartbeat``,
  ``probe.daemon.upload``) run by their jobs (``probe.daemon.jobs.link``).

Every answer of the collector carries its clock (HTTP ``Date``): the probe's clock is checked
against it (``probe.daemon.clock_check``, ``probe.daemon.clock_service``), and measurements
taken while that clock is unverified or off are annotated so, their own timestamps untouched.

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
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from probe.config import probe_config
from probe.core.measurement import ooni_time
from probe.core.typed_config import ConfigError
from probe.daemon import heartbeat, scheduler, traffic, upload, windows
from probe.daemon.budget import ByteBudget, migrate_file
from probe.daemon.clock import Clock, SystemClock
from probe.daemon.clock_check import ClockWatch
from probe.daemon.clock_service import ClockService
from probe.daemon.endpoints import EndpointList, FailoverUploader, configured
from probe.daemon.jobs import Job
from probe.daemon.jobs.ladder import LadderJob
from probe.daemon.jobs.link import HeartbeatJob, UploadJob
from probe.daemon.jobs.measured import PlannedJob, PlatformJob, TargetJob
from probe.daemon.jobs.throttling import THROTTLING_CHECK, ThrottlingJob
from probe.daemon.jobs.trace import TraceJob
from probe.daemon.state import DaemonState
from probe.daemon.uploader import Uploader
from probe.local import privacy
from probe.local.journal import (
    CLOCK_STATUS,
    COLLECTOR_PATH,
    CONTROLS,
    EVENT_WINDOWS,
    LADDER_TARGET,
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
from probe.nettests.registry import NETTESTS

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
SUMMARY_INTERVAL = 3600.0  # the hourly summary line in the log
SUMMARY_TARGETS = 10


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


async def throttling_round(config: probe_config.ProbeConfig,
                           budget: ByteBudget) -> list[Measurement]:
    """The throttling tests that are due (their cadence and their allowance of the day's
    budget are kept in the local database, ``probe.daemon.budget``; this returns nothing when
    none is due)."""
    from probe.nettests.throttling.run import run_throttling_round

    return await run_throttling_round(config, budget)


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
        self.measure_target = measure_target
        self.measure_ladder = measure_ladder
        self.measure_throttling = measure_throttling or (
            lambda: throttling_round(config, self.throttling_budget()))
        if measure_platform is None or measure_trace is None or platform_names is None:
            names, default_platform, default_trace = production_platform_jobs(config)
            measure_platform = measure_platform or default_platform
            measure_trace = measure_trace or default_trace
            platform_names = names if platform_names is None else platform_names
        self.measure_platform = measure_platform
        self.measure_trace = measure_trace
        self.platform_names = platform_names
        # The kinds of test that run on their own cadence (``NetTest.plan``), by kind: one
        # ``<kind>:<input>`` job per input.
        self.plans = plans if plans is not None else production_plans(config)
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
        self.clockwatch = ClockWatch(config.clock)
        self.clocks = ClockService(self.clockwatch, self.clock, self.spool,
                                   lambda: self.uploader.server_date)
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
        self.skipped_offline = 0
        self.domestic_reachable = False
        self.network_summary = "not measured yet"
        self.heartbeat_service = heartbeat.Heartbeats(self)
        self.uploads = upload.Uploads(
            config, self.spool, self.journal, uploader, clock=self.clock, rng=self.rng,
            scrub=lambda body: self.book.scrub_measurement(body), plan=self._plan_upload,
            check_clock=self.clocks.check, refresh=self._after_batch,
            queued=lambda: self.depth.measurements)
        # The jobs, by the kind that prefixes their timetable names (probe.daemon.jobs): the
        # measurement jobs on a cadence first (sites, platforms, then the registry's kinds
        # with a plan), in the order they are planned.
        self.target_job = TargetJob()
        self.platform_job = PlatformJob()
        self.planned = {kind: PlannedJob(kind, plan) for kind, plan in self.plans.items()}
        self.measured_kinds: list[TargetJob | PlatformJob | PlannedJob] = [
            self.target_job, self.platform_job, *self.planned.values()]
        self.trace_job = TraceJob(raw_capable)
        self.jobs: dict[str, Job] = {**self.planned}
        for job in (self.target_job, self.platform_job, self.trace_job, ThrottlingJob(),
                    LadderJob(), HeartbeatJob(), UploadJob()):
            self.jobs[job.kind] = job  # the daemon's own kinds before a plan of that name
        self._traffic_seen = 0
        self._traffic_pending = 0
        self._budget_warned = ""
        self.pace_warned = ""

    # ----------------------------------------------------------------- life cycle

    async def start(self) -> None:
        """Load what the journal remembers and plan the first jobs."""
        self.stopping = False
        self.book = privacy.AddressBook(await self.journal.address_key(),
                                        await self.journal.address_digests())
        await self.learn_interfaces()
        saved = await self.journal.get(EVENT_WINDOWS)
        if saved:
            self.event_windows = windows.parse(json.loads(saved), self.config.identity.country)
        self.window = windows.active(self.event_windows, self.clock.now())
        await self.heartbeat_service.load_announcement()
        if isinstance(self.uploader, FailoverUploader):  # after the announced endpoints
            self.uploader.resume(await self.journal.get(COLLECTOR_PATH), self.clock.now())
        # An older probe's throttling budget file joins the one budget in the database, once.
        await migrate_file(self.journal.db, self.config.throttling.budget_file,
                           self.clock.now().timestamp())
        await self.refresh_usage()
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
        for name, subject, interval in self.measured_jobs():
            self.timetable.plan(name, now + self._first_delay(interval, last_seen.get(subject)))
        await self.trace_job.start(self, recent)
        log.info("probe %s started: %d targets, %d measurements waiting in the spool",
                 self.config.identity.probe_id, len(self.targets), self.depth.measurements)

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
            if self.sites_reachable():
                await self._once_within_budget()
                if self.config.throttling.enabled and await self.may_measure():
                    await self.jobs["throttling"].run(self, "")
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
        jobs: list[Callable[[], Awaitable[int]]] = [
            *(partial(self.target_job.measure, self, t) for t in self.targets.values()),
            *(partial(self.platform_job.run, self, p) for p in self.platform_names),
            *(partial(self.planned[kind].run, self, subject)
              for kind, plan in self.plans.items() for subject in plan.inputs)]
        size = max(1, self.config.schedule.concurrency)
        for index in range(0, len(jobs), size):
            await self.count_traffic()
            if not await self.may_measure():
                # may_measure counted one skip; the rest of the round is skipped too.
                rest = len(jobs) - index - 1
                if self.sites_reachable():
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
        await self.count_traffic()
        if self._traffic_pending:
            await self.journal.add_usage(self.today(), self._traffic_pending)
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

    def spawn(self, name: str, job: Awaitable[object]) -> None:
        async def run() -> None:
            try:
                result = await job
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not stop the probe; it is logged and retried
                log.exception("job %s failed", name)
            else:
                if isinstance(result, int) and result:
                    log.debug("job %s recorded %d measurements", name, result)
            finally:
                self.in_flight.pop(name, None)

        self.in_flight[name] = asyncio.create_task(run(), name=name)

    # ------------------------------------------------------------------ dispatch

    def sped_up(self, interval: float) -> float:
        """``interval``, shortened inside an event window like the sites'."""
        return scheduler.target_interval(interval, self.config.schedule.event_speedup,
                                         self.window is not None)

    def measured_jobs(self) -> list[tuple[str, str, float]]:
        """(job name, journal target, interval) of every measurement job on a cadence: the
        targets, the platforms and the inputs of the kinds of test with a plan."""
        return [timed for job in self.measured_kinds for timed in job.timed(self)]

    async def _dispatch(self, name: str, due: float) -> None:
        """Run the job ``name`` (``kind`` or ``kind:subject``) by its kind's job object: plan
        it again, then start it unless it still runs or its job does not admit it now."""
        kind, _sep, subject = name.partition(":")
        now = self.clock.monotonic()
        if kind == "summary":
            self.timetable.plan(name, now + SUMMARY_INTERVAL)
            self._log_summary()
            return
        job = self.jobs.get(kind)
        if job is None:
            return
        following = job.next_due(self, subject, due, now)
        if following is not None:
            self.timetable.plan(name, following)
        if name in self.in_flight or not await job.admit(self, name, subject, now):
            return
        self.spawn(name, job.run(self, subject))

    async def may_measure(self) -> bool:
        """False (and the skip counted) while nothing answers or the day's budget is spent."""
        if not self.sites_reachable():
            self.skipped_offline += 1
            return False
        await self.refresh_usage()
        if self.budget is not None and self.used_today >= self.budget:
            await self.skip_for_budget()
            return False
        return True

    def sites_reachable(self) -> bool:
        """False only when nothing answers: the ladder found neither foreign nor domestic
        hosts and the collector does not answer either. Then every site would fail the same
        way, so they wait and the ladder (every minute) records the outage. Any sign of a
        working network (a domestic host, the collector) and sites are measured: a blocked
        anycast resolver must not silence the probe."""
        return not (self.online is False and self.reachable is False
                    and not self.domestic_reachable)

    async def skip_for_budget(self) -> None:
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
        for name, _subject, interval in self.measured_jobs():
            self.timetable.plan_earlier(name, now + self.rng.uniform(0, interval))
        self.timetable.plan_earlier("heartbeat", now + HeartbeatJob.interval(self))
        self.timetable.plan_earlier("ladder", now + LadderJob.interval(self))

    def replace_targets(self, targets: tuple[probe_config.Target, ...]) -> None:
        now = self.clock.monotonic()
        before = self.targets
        self.targets = {t.url: t for t in targets}
        self.config = replace(self.config, targets=targets)
        for url in before.keys() - self.targets.keys():
            self.timetable.remove(f"target:{url}")
        added = [url for url in self.targets if url not in before]
        for url in added:
            self.timetable.plan(f"target:{url}", now + self._first_delay(
                TargetJob.interval(self, self.targets[url]), None))
        log.info("target lists changed: %d targets (%d new, %d dropped)", len(self.targets),
                 len(added), len(before.keys() - self.targets.keys()))

    # ---------------------------------------------------------------------- jobs

    async def _ladder(self) -> None:
        await self.jobs["ladder"].run(self, "")

    async def _heartbeat(self) -> None:
        await self.heartbeat_service.beat()

    async def _upload(self) -> None:
        await self.uploads.drain(lambda: self.stopping)

    async def record(self, measurement: Measurement) -> None:
        """Annotate the clock's state, scrub, spool, and note the verdict and the traffic of
        one measurement."""
        self.clocks.mark(measurement)
        text = self.book.scrub_measurement(json.dumps(measurement, ensure_ascii=False,
                                                      separators=(",", ":")))
        entry = Entry(uid=str(measurement["measurement_uid"]),
                      test_name=str(measurement["test_name"]),
                      input=measurement.get("input"),
                      start_time=str(measurement["measurement_start_time"]), body=text)
        verdict = summarise_analysis(measurement)
        day = self.today()
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
            self.trace_job.consider(self, measurement)
        await self._note_controls(measurement)
        self.measured[entry.test_name] = self.measured.get(entry.test_name, 0) + 1
        await self._refresh_spool()
        log.debug("measured %s: spool holds %d", entry.input or entry.test_name,
                  self.depth.measurements)
        if self.reachable and self.depth.measurements >= self.uploads.batch_limit:
            self.timetable.plan_earlier("upload", self.clock.monotonic())

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

    def throttling_budget(self) -> ByteBudget:
        """The throttling tests' allowance for one round: their own share of the day, in the
        local database, and never more than what is left of the day's whole budget."""
        return ByteBudget(
            self.config.throttling.daily_budget_bytes, self.journal.db,
            day_left=lambda: None if self.budget is None else self.budget - self.used_today,
            clock=lambda: self.clock.now().timestamp())

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

    async def _after_batch(self) -> None:
        await self._refresh_spool()
        await self.count_traffic()

    def _plan_upload(self, delay: float) -> None:
        self.timetable.plan("upload", self.clock.monotonic() + delay)

    @property
    def can_trace(self) -> bool:
        return self.trace_job.can_trace

    @property
    def heartbeats(self) -> dict[str, int]:
        return self.heartbeat_service.counts

    @property
    def last_heartbeat(self) -> datetime | None:
        return self.heartbeat_service.last

    @property
    def upload_failures(self) -> int:
        return self.uploads.failures

    @property
    def last_upload(self) -> datetime | None:
        return self.uploads.last

    # ------------------------------------------------------------------ helpers

    def today(self) -> str:
        return self.clock.now().strftime("%Y-%m-%d")

    async def refresh_usage(self) -> None:
        today = self.today()
        if today != self.day:
            self.day = today
            self.used_today = (await self.journal.usage(today))[0]

    async def count_traffic(self) -> None:
        """Add the collector link's traffic to today's use: in memory now, on disk with the
        next measurement (one commit per minute less on an SD card)."""
        delta = self.uploader.traffic - self._traffic_seen
        if delta > 0:
            self._traffic_seen = self.uploader.traffic
            self._traffic_pending += delta
            self.used_today += delta

    def add_traffic(self, size: int) -> None:
        """Traffic of the daemon's own requests outside the uploader (the target lists)."""
        self._traffic_pending += size
        self.used_today += size

    async def _refresh_spool(self) -> None:
        self.depth = await self.spool.depth()
        self.counters = await self.spool.counters()

    async def learn_interfaces(self) -> None:
        await self.learn(privacy.interface_addresses(*self.interface_files),
                          only_identifying=True)

    async def learn(self, addresses: list[str], only_identifying: bool) -> None:
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

