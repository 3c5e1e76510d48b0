"""The detection pipeline: the one place where detection meets the store (style rule 10).

Every ``detection.interval`` it reads what was stored since its cursors (measurements and
heartbeats, in storage order), turns rows into observations (``detect.extract``), feeds the
engine, asks it to evaluate, upserts the events that changed and publishes them. The engine's
state and the cursors are saved together every ``detection.state_every`` (and whenever events
changed), so a restart resumes where it stopped; replaying rows after a crash is harmless
because event ids are deterministic and events are upserted.

Memory is bounded whatever the backlog: rows are read ``FEED_CHUNK`` at a time from each feed
and judged batch by batch, the engine evaluating each batch at the collector's time of its
last row (the replay clock, never later than now), so bins settle and are dropped while the
backlog is digested exactly as they would have been live. One run reads at most
``MAX_ROWS_PER_RUN`` rows (so the lease is renewed and the state saved in between); the next run
starts at once while a backlog remains.

The monitor's own outages (``detect.monitor``) are recognised here: every process stamps the
store while it runs (``alive``), and a process that starts after a gap longer than the grace
publishes a ``collector_down`` outage; the control failing for every probe is watched bin by
bin. Outages are events of kind ``monitor_outage``: stored and shown, never notified.

Every event written is also published to the app's ``EventBook`` (the status page, the
``kuzot_event_active`` metric and the notifier read it); at start the book is refilled with the
last week's events from the store, and a collector that does not lead refreshes its book from
the store every run (without notifying: the leader does), so every process serves the same
events. One log line is written per event opened, raised and ended, and per monitor outage.

With several collectors on one database only the holder of the ``detection`` lease runs it
(``Store.acquire_lease``, renewed every run, expiring after three missed runs); a collector that
takes the lease over reloads the state its predecessor saved.

It runs as a ``cleanup_ctx`` background task of the app. The engine is pure CPU work; it runs
in a worker thread so that the event loop keeps answering probes meanwhile (only this task
touches the engine). Observations made elsewhere in the process (the outside-in prober's
readings) are therefore handed over with ``offer`` and reach the engine at the next run, in
that thread, and the engine a run resumes from the store after taking the lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from collector.detect import extract, monitor, monitor_reach, observed
from collector.detect.engine import Engine
from collector.detect.model import Event, Observation, Run, iso, parse_time
from collector.detect.params import DetectionConfig
from collector.detect.windows import Calendar
from collector.events.book import EventBook
from collector.keys import (
    calendar_key,
    config_key,
    detection_metrics_key,
    event_snapshot_key,
    eventbook_key,
    pipeline_key,
    store_key,
)
from collector.metrics.detection import DetectionMetrics, EventSnapshot
from collector.notify.event import tier_rank
from collector.store import TIME_FORMAT, EventFilter, FeedRow, Store

log = logging.getLogger(__name__)
events_log = logging.getLogger("kuzot.events")

STATE_NAME = "detection"
ALIVE_NAME = "alive"
LEASE_NAME = "detection"
WEEK = 7 * 86400.0
# Rows read from each feed per batch: the bound on the pipeline's memory. A page of realistic
# web measurements holds every body decompressed (about 13 KB each in memory); 2,000 of them
# beside eight uploads of 100 measurements in flight took the collector from ~180 to ~255 MB
# under sustained ingest, 500 keep it under ~165 MB (bench/collector_scale.py).
FEED_CHUNK = 500
MAX_ROWS_PER_RUN = 50_000  # a large backlog is digested over several back-to-back runs
# Observations offered between two runs (``Pipeline.offer``); beyond it the oldest are dropped.
MAX_OFFERED = 10_000


def observed_in(row: FeedRow) -> Observation | None:
    """The observation of a measurement's feed row: the one stored with it at ingest
    (``detect.observed``), else extracted from its body (older rows, or an observation of
    other rules than today's)."""
    if row.observation is not None:
        stored = observed.decode(row.observation, row.probe_id)
        if not isinstance(stored, observed.Stale):
            return stored
    try:
        document = json.loads(row.body)
    except ValueError:
        return None
    return extract.observation(document, row.probe_id)


def _heartbeat_identity(body: str) -> tuple[str, str] | None:
    """(cc, asn) a heartbeat declares, when it declares valid ones."""
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    cc, asn = data.get("probe_cc"), data.get("probe_asn")
    if isinstance(cc, str) and len(cc) == 2 and cc.isupper() and isinstance(asn, str) \
            and asn.startswith("AS") and asn[2:].isdigit():
        return cc, asn
    return None


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime(TIME_FORMAT)


def _received(row: FeedRow) -> float | None:
    try:
        return parse_time(row.received_at)
    except ValueError:
        return None


def _describe(event: Mapping[str, Any]) -> str:
    where = ",".join(event["asns"]) or "all networks"
    what = f"{len(event['targets'])} targets" if event["targets"] else "all targets"
    return (f"{event['id']} {event['kind']} {event['tier']} {event['cc']} {where} {what} "
            f"since {event['start']}")


class Pipeline:
    def __init__(self, store: Store, config: DetectionConfig, calendar: Calendar,
                 metrics: DetectionMetrics, snapshot: EventSnapshot,
                 book: EventBook | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.config = config
        self.calendar = calendar
        self.metrics = metrics
        self.snapshot = snapshot
        self.book = book
        self.clock = clock
        self.engine = Engine(config, calendar)
        self.watch = self._new_watch()
        self.cursors = {"measurements": 0, "heartbeats": 0}
        self.saved_at = -float("inf")
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leading = False
        self.started_at = clock()
        self.caught_up = True  # whether the last run read everything stored
        self.alive_at = -float("inf")  # the last time this process stamped the store
        self.downtimes: list[tuple[float, float]] = []  # collector downtime found at start
        self.known: dict[str, tuple[str, str, str | None]] = {}  # id -> (tier, status, end)
        self.offered: list[object] = []  # for the engine at the next run (``offer``)

    @staticmethod
    def _moment(t: float) -> datetime:
        return datetime.fromtimestamp(t, UTC)

    def _new_watch(self) -> monitor.ControlWatch:
        return monitor.ControlWatch(bin=self.config.block.bin, settle=self.config.block.settle)

    @property
    def grace(self) -> float:
        """A gap in the ``alive`` stamps longer than this is an outage of the monitor."""
        return max(3 * self.config.interval, 5.0)

    async def start(self) -> None:
        """Refill the event book, and tell the monitor's own downtime if there was one."""
        self.started_at = self.clock()
        recent = await self.store.events(EventFilter(since=iso(self.started_at - WEEK),
                                                     limit=1000))
        self._remember(recent)
        if self.book is not None:
            await self.book.publish(recent, self._moment(self.started_at))
        last_alive = None
        saved = await self.store.load_state(ALIVE_NAME)
        if saved is not None:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                last_alive = float(json.loads(saved)["at"])
        outage = monitor.collector_downtime(last_alive, self.started_at, self.grace)
        await self._stamp_alive(self.started_at)
        if outage is not None:
            assert last_alive is not None
            self.downtimes.append((last_alive, self.started_at))
            await self._write([outage])

    async def _stamp_alive(self, now: float) -> None:
        self.alive_at = max(self.alive_at, now)
        await self.store.save_state(ALIVE_NAME, json.dumps({"at": now, "holder": self.holder}),
                                    _stamp(now))

    async def _resume(self) -> None:
        """Take up the state saved by the last leader (this process or another)."""
        self.engine = Engine(self.config, self.calendar)
        self.watch = self._new_watch()
        self.cursors = {"measurements": 0, "heartbeats": 0}
        saved = await self.store.load_state(STATE_NAME)
        if saved is not None:
            try:
                data = json.loads(saved)
                self.engine = Engine.from_state(data["engine"], self.config, self.calendar)
                self.cursors = {k: int(v) for k, v in data["cursors"].items()}
                if "monitor" in data:
                    self.watch.load_state(data["monitor"])
                for change in self.engine.state_changes:
                    log.warning("%s", change.describe())
                    self.metrics.state_resets.labels(change.detector, change.reason,
                                                     change.action).inc()
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("detection state unreadable, starting afresh: %s", exc)
                self.engine = Engine(self.config, self.calendar)
                self.watch = self._new_watch()
                self.cursors = {"measurements": 0, "heartbeats": 0}
        self.engine.listening_since(self.started_at)
        for start, end in self.downtimes:
            self.watch.cover(start, end)

    async def _lead(self, now: float) -> bool:
        """Whether this process runs detection now (it holds, or just took, the lease)."""
        expires = now + max(3 * self.config.interval, 60.0)
        leading = await self.store.acquire_lease(LEASE_NAME, self.holder, _stamp(now),
                                                 _stamp(expires))
        if leading and not self.leading:
            await self._resume()
        self.leading = leading
        return leading

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self._stamp_alive(max(self.clock(), self.alive_at))
        if self.leading:
            await self.save(self.clock())
            await self.store.release_lease(LEASE_NAME, self.holder)
            self.leading = False

    async def _read_batch(self, now: float) -> tuple[list[FeedRow], list[FeedRow], float, bool]:
        """About ``FEED_CHUNK`` rows of each feed, the replay clock to judge them at, and
        whether more rows wait. The clock is the collector's time of the last row of a feed
        that has more to give (the other feed's rows after it may not be read yet), else
        ``now``."""
        measurements = await self.store.measurement_feed(self.cursors["measurements"],
                                                         FEED_CHUNK)
        heartbeats = await self.store.heartbeat_feed(self.cursors["heartbeats"], FEED_CHUNK)
        measurements = await self._with_stale_bodies(measurements)
        clock, more = now, False
        for rows, name in ((measurements, "measurements"), (heartbeats, "heartbeats")):
            if rows:
                self.cursors[name] = rows[-1].seq
            # PostgreSQL's page may run one batch past the size; only the last is short.
            if len(rows) >= FEED_CHUNK:
                more = True
                last = _received(rows[-1])
                if last is not None:
                    clock = min(clock, last)
        return measurements, heartbeats, clock, more

    async def _with_stale_bodies(self, rows: list[FeedRow]) -> list[FeedRow]:
        """``rows`` where each row whose stored observation is of other rules than today's
        (``observed.VERSION``) carries its body instead, read by uid (from the archive when
        archived): the feed gives no body with an observation."""
        stale = [r.uid for r in rows if r.observation is not None and not r.body
                 and not observed.current(r.observation)]
        if not stale:
            return rows
        bodies = await self.store.measurement_bodies(stale)
        return [dataclasses.replace(r, body=bodies.get(r.uid, ""), observation=None)
                if r.uid in bodies else r for r in rows]

    def offer(self, observations: list[object]) -> None:
        """Observations for the engine that are not stored rows (the outside-in prober's
        readings), kept for the next run: the engine is touched only by this task, in its
        worker thread, so an observation is never added in the middle of an evaluation nor to
        an engine that the run replaces. A collector that does not lead drops them at its run
        (the leader's engine is another process's); at most ``MAX_OFFERED`` wait."""
        self.offered.extend(observations)
        del self.offered[:-MAX_OFFERED]

    def _digest(self, measurements: list[FeedRow], heartbeats: list[FeedRow],
                now: float, offered: list[object] | None = None,
                ) -> tuple[list[Event], list[dict[str, Any]]]:
        """Feed the engine (the rows, then ``offered``) and evaluate: pure CPU, run in a
        worker thread."""
        engine = self.engine
        contacts: list[tuple[float, str]] = []
        observations: list[object] = []
        for row in measurements:
            try:
                received = parse_time(row.received_at)
            except ValueError:
                continue
            observation = observed_in(row)
            if observation is None:
                continue
            engine.set_probe(row.probe_id, observation.cc, observation.asn)
            contacts.append((received, row.probe_id))
            observations.append(observation)
        for row in heartbeats:
            identity = _heartbeat_identity(row.body)
            if identity is not None:
                engine.set_probe(row.probe_id, *identity)
            try:
                received = parse_time(row.received_at)
            except ValueError:
                continue
            contacts.append((received, row.probe_id))
            # Which way the heartbeat came (a fallback endpoint, every control blocked):
            # the monitor blocked from a network (collector.detect.monitor_reach).
            path = monitor_reach.reading(row.body, row.probe_id, received)
            if path is not None:
                observations.append(path)
        # Both feeds in the collector's time order: a probe's gaps must not be invented by
        # reading its uploads before its heartbeats.
        for received, probe_id in sorted(contacts):
            engine.contact(probe_id, received)
        for item in observations:
            engine.add(item)
            if isinstance(item, Run):
                self.watch.add(item)
        for item in offered or ():
            engine.add(item)
        return engine.evaluate(now), self.watch.evaluate(now)

    async def run_once(self, now: float | None = None) -> list[Event]:
        """One detection run; returns the events it wrote (none when another collector leads)."""
        started = time.perf_counter()
        now = self.clock() if now is None else now
        self.snapshot.windows = sorted({(w.cc, w.name) for w in self.calendar.active(None, now)})
        await self._stamp_alive(now)
        offered, self.offered = self.offered, []
        if not await self._lead(now):
            self.metrics.runs.labels("standby").inc()
            await self._refresh(now)
            return []
        changed: dict[str, Event] = {}
        outages: dict[str, dict[str, Any]] = {}
        read = 0
        more = True
        clock = now
        while more and read < MAX_ROWS_PER_RUN:
            measurements, heartbeats, clock, more = await self._read_batch(now)
            read += len(measurements) + len(heartbeats)
            self.metrics.inputs.labels("measurement").inc(len(measurements))
            self.metrics.inputs.labels("heartbeat").inc(len(heartbeats))
            events, batch_outages = await asyncio.to_thread(
                self._digest, measurements, heartbeats, clock, offered)
            offered = []
            written = [e.to_json() for e in events] + batch_outages
            await self.store.upsert_events(written)  # each batch durable as soon as judged
            self._announce(written)
            self._remember(written)
            changed.update((e.id, e) for e in events)
            outages.update((o["id"], o) for o in batch_outages)
        self.caught_up = not more
        documents = [changed[k].to_json() for k in sorted(changed)]
        if self.book is not None and (documents or outages):
            await self.book.publish([*documents, *outages.values()], self._moment(now))
        for event in changed.values():
            self.metrics.updates.labels(event.kind, event.tier).inc()
        if changed or outages or not self.caught_up \
                or now - self.saved_at >= self.config.state_every:
            await self.save(now)
        self.metrics.late.set(self.engine.late)
        self.metrics.blind.set(self.engine.blind_evaluations)
        self.metrics.lag.set(0.0 if self.caught_up else max(0.0, now - clock))
        self.metrics.duration.observe(time.perf_counter() - started)
        self.metrics.last_run.set(now)
        self.metrics.runs.labels("ok").inc()
        return [changed[k] for k in sorted(changed)]

    async def _refresh(self, now: float) -> None:
        """A collector that does not lead serves the events the leader stored."""
        recent = await self.store.events(EventFilter(since=iso(now - WEEK), limit=1000))
        self._remember(recent)
        if self.book is not None:
            await self.book.publish(recent, self._moment(now), notify=False)

    def _remember(self, events: list[dict[str, Any]]) -> None:
        for event in events:
            self.known[event["id"]] = (event["tier"], event["status"], event["end"])
        horizon = iso(self.clock() - WEEK)
        for event_id in [k for k, (_, _, end) in self.known.items()
                         if end is not None and end < horizon]:
            del self.known[event_id]

    def _announce(self, events: list[dict[str, Any]]) -> None:
        """One log line per event opened, raised and ended (against what was last written),
        and per outage of the monitor (which is also counted)."""
        for event in events:
            before = self.known.get(event["id"])
            if event["kind"] == monitor.KIND:
                if before is None:
                    self.metrics.monitor_outages.labels(event["mechanism"]).inc()
                if before is None or (before[1] == "open" and event["status"] == "closed"):
                    events_log.warning(
                        "monitor outage: %s from %s to %s; its observations are no evidence",
                        event["mechanism"], event["start"], event["end"] or "now")
                continue
            if before is None:
                events_log.info("event opened: %s", _describe(event))
            elif tier_rank(event["tier"]) > tier_rank(before[0]):
                events_log.info("event raised: %s (was %s)", _describe(event), before[0])
            if event["status"] == "closed" and (before is None or before[1] == "open"):
                events_log.info("event ended: %s at %s", event["id"], event["end"])

    async def _write(self, events: list[dict[str, Any]]) -> None:
        await self.store.upsert_events(events)
        self._announce(events)
        self._remember(events)
        if self.book is not None:
            await self.book.publish(events, self._moment(self.clock()))

    async def save(self, now: float) -> None:
        state = await asyncio.to_thread(self._serialize)
        await self.store.save_state(STATE_NAME, state, _stamp(now))
        self.saved_at = now

    def _serialize(self) -> str:
        data: dict[str, Any] = {"cursors": self.cursors, "engine": self.engine.to_state(),
                                "monitor": self.watch.to_state()}
        return json.dumps(data, separators=(",", ":"))

    async def run_safely(self, now: float | None = None) -> list[Event]:
        """``run_once``, but a failed run (a bug, the database gone) neither stops detection
        nor leaves the engine half-fed: the next run takes up the last saved state and replays
        what came after it (event ids are deterministic, so the replay rewrites the same
        events)."""
        try:
            return await self.run_once(now)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("detection run failed")
            self.metrics.runs.labels("error").inc()
            self.leading = False
            return []

    async def run_forever(self) -> None:
        while True:
            await self.run_safely()
            # A backlog is digested run after run; otherwise wait for the next interval.
            await asyncio.sleep(self.config.interval if self.caught_up or not self.leading
                                else 0)


async def pipeline_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run detection in the background for the app's lifetime (after the store is open)."""
    config = app[config_key].detection
    pipeline = Pipeline(app[store_key], config, app[calendar_key], app[detection_metrics_key],
                        app[event_snapshot_key], app[eventbook_key])
    app[pipeline_key] = pipeline
    if not config.enabled:
        yield
        return
    await pipeline.start()
    task = asyncio.create_task(pipeline.run_forever())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    with contextlib.suppress(Exception):
        await pipeline.stop()
