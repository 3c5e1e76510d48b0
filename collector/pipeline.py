"""The detection pipeline: the one place where detection meets the store (style rule 10).

Every ``detection.interval`` it reads what was stored since its cursors (measurements and
heartbeats, in storage order), turns rows into observations (``detect.extract``), feeds the
engine, asks it to evaluate at the current time, upserts the events that changed and refreshes
the open-events snapshot the metrics export. The engine's state and the cursors are saved
together every ``detection.state_every`` (and whenever events changed), so a restart resumes
where it stopped; replaying rows after a crash is harmless because event ids are deterministic
and events are upserted.

Every event written is also published to the app's ``EventBook`` (the status page, the
``kuzot_event_active`` metric and the notifier read it); at start the book is refilled with the
last week's events from the store.

With several collectors on one database only the holder of the ``detection`` lease runs it
(``Store.acquire_lease``, renewed every run, expiring after three missed runs); a collector that
takes the lease over reloads the state its predecessor saved.

It runs as a ``cleanup_ctx`` background task of the app. The engine is pure CPU work; it runs
in a worker thread so that the event loop keeps answering probes meanwhile (only this task
touches the engine).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from collector.detect import extract
from collector.detect.engine import Engine
from collector.detect.model import Event, iso, parse_time
from collector.detect.params import DetectionConfig
from collector.detect.windows import Calendar
from collector.event_metrics import DetectionMetrics, EventSnapshot
from collector.eventbook import EventBook
from collector.keys import (
    calendar_key,
    config_key,
    detection_metrics_key,
    event_snapshot_key,
    eventbook_key,
    pipeline_key,
    store_key,
)
from collector.store import TIME_FORMAT, EventFilter, FeedRow, Store

log = logging.getLogger(__name__)

STATE_NAME = "detection"
LEASE_NAME = "detection"
WEEK = 7 * 86400.0
FEED_CHUNK = 2000
MAX_ROWS_PER_RUN = 200_000  # a large backlog is digested over several runs


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
        self.cursors = {"measurements": 0, "heartbeats": 0}
        self.saved_at = -float("inf")
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.leading = False
        self.started_at = clock()

    async def start(self) -> None:
        """Refill the event book; the collector listens from now on."""
        self.started_at = self.clock()
        if self.book is not None:
            recent = await self.store.events(EventFilter(since=iso(self.started_at - WEEK),
                                                         limit=1000))
            await self.book.publish(recent)

    async def _resume(self) -> None:
        """Take up the state saved by the last leader (this process or another)."""
        self.engine = Engine(self.config, self.calendar)
        self.cursors = {"measurements": 0, "heartbeats": 0}
        saved = await self.store.load_state(STATE_NAME)
        if saved is not None:
            try:
                data = json.loads(saved)
                self.engine = Engine.from_state(data["engine"], self.config, self.calendar)
                self.cursors = {k: int(v) for k, v in data["cursors"].items()}
                for change in self.engine.state_changes:
                    log.warning("%s", change.describe())
                    self.metrics.state_resets.labels(change.detector, change.reason,
                                                     change.action).inc()
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("detection state unreadable, starting afresh: %s", exc)
                self.engine = Engine(self.config, self.calendar)
                self.cursors = {"measurements": 0, "heartbeats": 0}
        self.engine.listening_since(self.started_at)

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
        if self.leading:
            await self.save(self.clock())
            await self.store.release_lease(LEASE_NAME, self.holder)
            self.leading = False

    async def _read(self) -> tuple[list[FeedRow], list[FeedRow]]:
        measurements: list[FeedRow] = []
        heartbeats: list[FeedRow] = []
        for name, reader, out in (("measurements", self.store.measurement_feed, measurements),
                                  ("heartbeats", self.store.heartbeat_feed, heartbeats)):
            while len(out) < MAX_ROWS_PER_RUN:
                rows = await reader(self.cursors[name], FEED_CHUNK)
                if not rows:
                    break
                out.extend(rows)
                self.cursors[name] = rows[-1].seq
        return measurements, heartbeats

    def _digest(self, measurements: list[FeedRow], heartbeats: list[FeedRow],
                now: float) -> list[Event]:
        """Feed the engine and evaluate: pure CPU, run in a worker thread."""
        engine = self.engine
        contacts: list[tuple[float, str]] = []
        observations = []
        for row in measurements:
            try:
                document = json.loads(row.body)
                received = parse_time(row.received_at)
            except ValueError:
                continue
            observation = extract.observation(document, row.probe_id)
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
                contacts.append((parse_time(row.received_at), row.probe_id))
            except ValueError:
                continue
        # Both feeds in the collector's time order: a probe's gaps must not be invented by
        # reading its uploads before its heartbeats.
        for received, probe_id in sorted(contacts):
            engine.contact(probe_id, received)
        for observation in observations:
            engine.add(observation)
        return engine.evaluate(now)

    async def run_once(self, now: float | None = None) -> list[Event]:
        """One detection run; returns the events it wrote (none when another collector leads)."""
        started = time.perf_counter()
        now = self.clock() if now is None else now
        self.snapshot.windows = sorted({(w.cc, w.name) for w in self.calendar.active(None, now)})
        if not await self._lead(now):
            self.metrics.runs.labels("standby").inc()
            return []
        measurements, heartbeats = await self._read()
        self.metrics.inputs.labels("measurement").inc(len(measurements))
        self.metrics.inputs.labels("heartbeat").inc(len(heartbeats))
        changed = await asyncio.to_thread(self._digest, measurements, heartbeats, now)
        documents = [e.to_json() for e in changed]
        await self.store.upsert_events(documents)
        if self.book is not None and documents:
            await self.book.publish(documents)
        for event in changed:
            self.metrics.updates.labels(event.kind, event.tier).inc()
        if changed or now - self.saved_at >= self.config.state_every:
            await self.save(now)
        self.metrics.late.set(self.engine.late)
        self.metrics.blind.set(self.engine.blind_evaluations)
        self.metrics.duration.observe(time.perf_counter() - started)
        self.metrics.last_run.set(now)
        self.metrics.runs.labels("ok").inc()
        return changed

    async def save(self, now: float) -> None:
        state = await asyncio.to_thread(self._serialize)
        await self.store.save_state(STATE_NAME, state, _stamp(now))
        self.saved_at = now

    def _serialize(self) -> str:
        data: dict[str, Any] = {"cursors": self.cursors, "engine": self.engine.to_state()}
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
            await asyncio.sleep(self.config.interval)


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
