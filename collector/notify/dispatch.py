"""The notifier: from published events to messages, once per change, never a flood.

``Notifier.publish(events)`` is the whole interface detection needs: hand it the current state
of the events that changed (or all of them; repeating an unchanged event costs nothing). For
each destination it asks ``decide`` what that reader still needs to hear and queues it. One
worker per destination then sends, with these guarantees:

* dedup: what each destination was told is remembered (and saved to ``state_file``), so a
  repeated publish or a restart sends nothing again;
* coalescing: changes waiting for the same event collapse into the latest one (opened then
  escalated while waiting is one "opened" at the new tier);
* rate limit: at most ``max_per_hour`` messages per destination in any hour; when more than
  ``digest_after`` changes wait, they go as one digest message;
* retries: exponential backoff with full jitter, honouring the other side's retry-after, up to
  ``retry.attempts``; then the change is logged and dropped, never retried in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from collector.events.kinds import MONITOR_OUTAGE
from collector.events.names import NetworkNames
from collector.notify.channels import (
    Channel,
    DeliveryError,
    EmailChannel,
    TelegramChannel,
    WebhookChannel,
)
from collector.notify.config import Notifications, Retry
from collector.notify.decide import Transition, decide
from collector.notify.event import EventView
from collector.notify.templates import Language, Message, render, render_digest

log = logging.getLogger("kuzot.notify")
HOUR = 3600.0
Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class Destination:
    """A channel with its reader's tier threshold and language, and what it has been told."""

    channel: Channel
    min_tier: str
    language: Language
    told: dict[str, dict[str, Any]] = field(default_factory=dict)
    pending: OrderedDict[str, Transition] = field(default_factory=OrderedDict)
    sent_at: deque[float] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)


def destinations_from(config: Notifications) -> list[Destination]:
    out: list[Destination] = []
    for hook in config.webhooks:
        out.append(Destination(WebhookChannel(hook), hook.min_tier, hook.language))
    for chat in config.telegram:
        out.append(Destination(TelegramChannel(chat), chat.min_tier, chat.language))
    for mail in config.email:
        out.append(Destination(EmailChannel(mail), mail.min_tier, mail.language))
    return out


def backoff(attempt: int, retry: Retry, rng: random.Random) -> float:
    """Full-jitter exponential backoff: uniform in [0, min(maximum, initial * 2**attempt)]."""
    return rng.uniform(0.0, min(retry.maximum, retry.initial * (2 ** attempt)))


class NotifyMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.sent = Counter("kuzot_notifications_sent", "Notification messages delivered, "
                            "by destination and change (opened, escalated, closed, digest).",
                            ["destination", "change"], registry=registry)
        self.failed_attempts = Counter(
            "kuzot_notification_failed_attempts", "Delivery attempts that failed (each retry "
            "counts).", ["destination"], registry=registry)
        self.dropped = Counter("kuzot_notifications_dropped", "Messages given up after "
                               "retries or a permanent error.", ["destination"],
                               registry=registry)
        self.pending = Gauge("kuzot_notifications_pending", "Changes waiting to be sent.",
                             ["destination"], registry=registry)


class Notifier:
    """Turns published event states into messages; see the module docstring for guarantees."""

    def __init__(
        self, config: Notifications, public_url: str, registry: CollectorRegistry,
        destinations: list[Destination] | None = None, *,
        clock: Callable[[], float] = time.monotonic, sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.public_url = public_url
        self.destinations = destinations if destinations is not None else destinations_from(
            config)
        self.metrics = NotifyMetrics(registry)
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        # Names of networks and categories of sites for the messages (set by the app).
        self.names: NetworkNames | None = None
        self.categories: Mapping[str, str] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.idle = asyncio.Condition()
        self.busy = 0
        self._load_state()

    # State that survives restarts.

    def _state_path(self) -> Path:
        return Path(self.config.state_file)

    def _load_state(self) -> None:
        path = self._state_path()
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            # A damaged state file must not stop the collector; the cost is that events open
            # right now may be announced a second time.
            log.warning("notification state %s unreadable (%s); starting empty", path, exc)
            return
        for destination in self.destinations:
            told = saved.get(destination.channel.name, {}) if isinstance(saved, dict) else {}
            if isinstance(told, dict):
                destination.told = {k: v for k, v in told.items() if isinstance(v, dict)}

    def _save_state(self) -> None:
        path = self._state_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        document = {d.channel.name: d.told for d in self.destinations}
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(document, sort_keys=True), encoding="utf-8")
        os.replace(temporary, path)

    def _forget_old(self, now: datetime) -> None:
        horizon = now.timestamp() - self.config.forget_after
        for destination in self.destinations:
            for event_id in [k for k, v in destination.told.items()
                             if v.get("closed") and v.get("at", 0) < horizon]:
                del destination.told[event_id]

    # The interface for detection.

    async def publish(self, events: Iterable[EventView | Mapping[str, Any]]) -> None:
        """Queue what each destination still needs to hear about these events."""
        views = [e if isinstance(e, EventView) else EventView.from_json(dict(e))
                 for e in events]
        # The monitor's own outage is no news for any reader: the status page shows it.
        views = [e for e in views if e.kind != MONITOR_OUTAGE]
        for destination in self.destinations:
            for event in views:
                told = destination.told.get(event.id, {})
                transition = decide(told.get("tier"), bool(told.get("closed")), event,
                                    destination.min_tier)
                if transition is None:
                    destination.pending.pop(event.id, None)
                else:
                    destination.pending[event.id] = transition
            self.metrics.pending.labels(destination.channel.name).set(len(destination.pending))
            if destination.pending:
                destination.wake.set()

    async def start(self) -> None:
        self.tasks = [asyncio.create_task(self._run(d), name=f"notify-{d.channel.name}")
                      for d in self.destinations]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks = []

    async def drained(self) -> None:
        """Wait until nothing is pending or being sent (for orderly shutdown and tests)."""
        async with self.idle:
            await self.idle.wait_for(
                lambda: self.busy == 0 and not any(d.pending for d in self.destinations))

    # The worker of one destination.

    async def _run(self, destination: Destination) -> None:
        name = destination.channel.name
        while True:
            await destination.wake.wait()
            destination.wake.clear()
            while destination.pending:
                await self._wait_for_slot(destination)
                batch = self._take(destination)
                if not batch:
                    break
                self.busy += 1
                try:
                    await self._send(destination, batch)
                finally:
                    self.busy -= 1
                    self.metrics.pending.labels(name).set(len(destination.pending))
                    async with self.idle:
                        self.idle.notify_all()
            async with self.idle:
                self.idle.notify_all()

    async def _wait_for_slot(self, destination: Destination) -> None:
        while True:
            now = self.clock()
            while destination.sent_at and now - destination.sent_at[0] >= HOUR:
                destination.sent_at.popleft()
            if len(destination.sent_at) < self.config.max_per_hour:
                return
            await self.sleep(HOUR - (now - destination.sent_at[0]))

    def _take(self, destination: Destination) -> list[Transition]:
        if len(destination.pending) > self.config.digest_after:
            batch = list(destination.pending.values())
            destination.pending.clear()
            return batch
        _, transition = destination.pending.popitem(last=False)
        return [transition]

    def _message(self, destination: Destination, batch: list[Transition]) -> Message:
        if len(batch) == 1:
            return render(batch[0], destination.language, self.public_url, self.names,
                          self.categories)
        return render_digest(batch, destination.language, self.public_url, self.names,
                             self.categories)

    async def _send(self, destination: Destination, batch: list[Transition]) -> None:
        name = destination.channel.name
        message = self._message(destination, batch)
        retry = self.config.retry
        delivered = False
        for attempt in range(retry.attempts):
            try:
                await destination.channel.deliver(message, batch, self.public_url)
            except DeliveryError as exc:
                self.metrics.failed_attempts.labels(name).inc()
                log.warning("notification to %s failed (attempt %d): %s", name, attempt + 1,
                            exc)
                if exc.permanent or attempt + 1 == retry.attempts:
                    break
                delay = backoff(attempt, retry, self.rng)
                await self.sleep(max(delay, exc.retry_after or 0.0))
            except Exception:
                # A bug or a missing secret file: logged with its traceback, the worker lives
                # on, and the change counts as dropped rather than retried in a loop.
                self.metrics.failed_attempts.labels(name).inc()
                log.exception("notification to %s failed", name)
                break
            else:
                delivered = True
                break
        destination.sent_at.append(self.clock())
        if delivered:
            change = batch[0].change if len(batch) == 1 else "digest"
            self.metrics.sent.labels(name, change).inc()
            log.info("notification sent to %s: %s %s", name, change, ", ".join(
                f"{t.event.id} ({t.event.kind} {t.event.tier} {t.event.status})"
                for t in batch))
        else:
            self.metrics.dropped.labels(name).inc()
        # Even a dropped change is recorded as told: resending it on every publish would turn
        # one broken destination into a loop of retries.
        now = datetime.now(UTC)
        for transition in batch:
            destination.told[transition.event.id] = {
                "tier": transition.event.tier, "closed": transition.change == "closed",
                "at": now.timestamp(), "delivered": delivered}
        # A change queued while this one was on the wire was decided against the old state;
        # decide it again against what the reader has now been told.
        for transition in batch:
            queued = destination.pending.get(transition.event.id)
            if queued is not None:
                told = destination.told[transition.event.id]
                again = decide(told["tier"], told["closed"], queued.event, destination.min_tier)
                if again is None:
                    del destination.pending[transition.event.id]
                else:
                    destination.pending[transition.event.id] = again
        self._forget_old(now)
        self._save_state()
