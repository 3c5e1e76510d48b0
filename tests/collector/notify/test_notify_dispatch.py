"""The notifier end to end against a real webhook receiver: one message per change, nothing
repeated (not even after a restart), flood control, retries and giving up."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from collector.notify.config import Notifications, Retry, Webhook
from collector.notify.dispatch import Notifier
from tests.collector.notify.test_notify_decide import event
from tests.helpers.servers import serve_app


class Receiver:
    """Keeps each delivered webhook body; answers with the queued statuses first."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.bodies: list[dict[str, Any]] = []
        self.attempts = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        body = json.loads(await request.read())
        if self.statuses:
            return web.Response(status=self.statuses.pop(0), headers={"Retry-After": "0"})
        self.bodies.append(body)
        return web.Response(status=204)

    def changes(self) -> list[tuple[str, str, str]]:
        return [(c["change"], c["event"]["id"], c["event"]["tier"])
                for body in self.bodies for c in body["changes"]]


@contextlib.asynccontextmanager
async def notifier(tmp_path: Path, receiver: Receiver, **settings: Any
                   ) -> AsyncIterator[tuple[Notifier, CollectorRegistry]]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    async with serve_app(app) as port:
        hook = Webhook(url=f"http://127.0.0.1:{port}/hook", secret="k",
                       min_tier=settings.pop("min_tier", "likely"))
        timing = {k: settings.pop(k) for k in ("sleep", "clock") if k in settings}
        config = Notifications(webhooks=(hook,), state_file=str(tmp_path / "state.json"),
                               retry=Retry(attempts=3, initial=0.01, maximum=0.05),
                               **settings)
        registry = CollectorRegistry()
        service = Notifier(config, "https://status.example", registry, **timing)
        await service.start()
        try:
            yield service, registry
        finally:
            await service.close()


async def publish(service: Notifier, *events: Any) -> None:
    await service.publish(events)
    await asyncio.wait_for(service.drained(), 10)


async def test_one_message_per_open_escalate_close_and_no_repeats(tmp_path: Path) -> None:
    receiver = Receiver()
    async with notifier(tmp_path, receiver) as (service, registry):
        await publish(service, event("suspected"))            # below this reader's tier
        await publish(service, event("likely"))
        await publish(service, event("likely"))               # the same state again
        await publish(service, event("likely", evidence={"more": 1}))  # evidence grows
        await publish(service, event("confirmed"))
        await publish(service, event("likely"))               # a fall is not news
        await publish(service, event("confirmed", "closed"))
        await publish(service, event("confirmed", "closed"))
    assert receiver.changes() == [("opened", "ev1", "likely"),
                                  ("escalated", "ev1", "confirmed"),
                                  ("closed", "ev1", "confirmed")]
    assert registry.get_sample_value("kuzot_notifications_sent_total",
                                     {"destination": "webhook", "change": "opened"}) == 1


async def test_a_restart_does_not_send_again(tmp_path: Path) -> None:
    receiver = Receiver()
    async with notifier(tmp_path, receiver) as (service, _):
        await publish(service, event("likely"))
    async with notifier(tmp_path, receiver) as (service, _):
        await publish(service, event("likely"))
        await publish(service, event("likely", "closed"))
    assert receiver.changes() == [("opened", "ev1", "likely"), ("closed", "ev1", "likely")]
    saved = json.loads((tmp_path / "state.json").read_text())
    assert saved["webhook"]["ev1"]["closed"] is True


async def test_changes_waiting_for_the_same_event_collapse(tmp_path: Path) -> None:
    receiver = Receiver()
    async with notifier(tmp_path, receiver, min_tier="suspected") as (service, _):
        # Published back to back, before the worker runs: one message at the latest tier.
        await service.publish([event("suspected")])
        await service.publish([event("likely")])
        await service.publish([event("confirmed")])
        await asyncio.wait_for(service.drained(), 10)
    assert receiver.changes() == [("opened", "ev1", "confirmed")]


async def test_many_events_at_once_are_one_digest(tmp_path: Path) -> None:
    receiver = Receiver()
    async with notifier(tmp_path, receiver, digest_after=3) as (service, _):
        await publish(service, *(event("likely", id=f"ev{i}") for i in range(50)))
        assert len(receiver.bodies) == 1
        assert len(receiver.bodies[0]["changes"]) == 50
        assert receiver.bodies[0]["message"]["text"].startswith("50 events changed:")
        # Each event was told once: publishing them all again sends nothing.
        await publish(service, *(event("likely", id=f"ev{i}") for i in range(50)))
    assert len(receiver.bodies) == 1


async def test_rate_limit_holds_messages_and_then_sends_one_digest(tmp_path: Path) -> None:
    receiver = Receiver()
    waits: list[float] = []
    release = asyncio.Event()
    now = [1000.0]

    async def sleep(seconds: float) -> None:
        # Stands in for the hour the limiter waits; the test decides when it has passed.
        waits.append(seconds)
        await release.wait()
        now[0] += seconds

    async with notifier(tmp_path, receiver, max_per_hour=2, digest_after=3,
                        sleep=sleep, clock=lambda: now[0]) as (service, registry):
        await publish(service, event("likely", id="ev0"))
        await publish(service, event("likely", id="ev1"))
        await service.publish([event("likely", id="ev2")])
        for _ in range(50):
            if waits:
                break
            await asyncio.sleep(0.01)
        assert len(receiver.bodies) == 2 and len(waits) == 1
        assert waits == [3600.0]                 # until the oldest send is an hour old
        for i in range(3, 8):
            await service.publish([event("likely", id=f"ev{i}")])
        assert registry.get_sample_value("kuzot_notifications_pending",
                                         {"destination": "webhook"}) == 6
        release.set()
        await asyncio.wait_for(service.drained(), 10)
    assert len(receiver.bodies) == 3
    assert [c[1] for c in receiver.changes()[2:]] == [f"ev{i}" for i in range(2, 8)]


async def test_temporary_failures_are_retried_with_backoff(tmp_path: Path) -> None:
    receiver = Receiver(statuses=[503, 502])
    async with notifier(tmp_path, receiver) as (service, registry):
        await publish(service, event("likely"))
    assert receiver.attempts == 3
    assert receiver.changes() == [("opened", "ev1", "likely")]
    assert registry.get_sample_value("kuzot_notification_failed_attempts_total",
                                     {"destination": "webhook"}) == 2


async def test_permanent_failure_is_dropped_once_not_retried_forever(tmp_path: Path) -> None:
    receiver = Receiver(statuses=[400, 400, 400, 400])
    async with notifier(tmp_path, receiver) as (service, registry):
        await publish(service, event("likely"))
        await publish(service, event("likely"))
    assert receiver.attempts == 1 and receiver.bodies == []
    assert registry.get_sample_value("kuzot_notifications_dropped_total",
                                     {"destination": "webhook"}) == 1


async def test_retries_run_out(tmp_path: Path) -> None:
    receiver = Receiver(statuses=[500] * 10)
    async with notifier(tmp_path, receiver) as (service, registry):
        await publish(service, event("likely"))
    assert receiver.attempts == 3
    assert registry.get_sample_value("kuzot_notifications_dropped_total",
                                     {"destination": "webhook"}) == 1


async def test_a_damaged_state_file_does_not_stop_the_collector(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json")
    receiver = Receiver()
    async with notifier(tmp_path, receiver) as (service, _):
        await publish(service, event("likely"))
    assert receiver.changes() == [("opened", "ev1", "likely")]


async def test_a_missing_secret_file_drops_the_message_and_the_worker_lives_on(
        tmp_path: Path) -> None:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    async with serve_app(app) as port:
        url = f"http://127.0.0.1:{port}/hook"
        config = Notifications(
            webhooks=(Webhook(name="lost", url=url, secret_file=str(tmp_path / "missing")),
                      Webhook(name="fine", url=url, secret="k")),
            state_file=str(tmp_path / "state.json"))
        registry = CollectorRegistry()
        service = Notifier(config, "https://s", registry)
        await service.start()
        try:
            await publish(service, event("likely"))
            await publish(service, event("likely", "closed"))
        finally:
            await service.close()
    assert receiver.changes() == [("opened", "ev1", "likely"), ("closed", "ev1", "likely")]
    assert registry.get_sample_value("kuzot_notifications_dropped_total",
                                     {"destination": "lost"}) == 2


async def test_each_message_sent_is_one_log_line_and_the_monitors_outage_is_never_sent(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="kuzot.notify")
    receiver = Receiver()
    outage = event("confirmed", id="monitor-collector_down-20220105T140500Z",
                   kind="monitor_outage", cc="ZZ", asns=[], targets=[],
                   mechanism="collector_down")
    async with notifier(tmp_path, receiver, min_tier="suspected") as (service, _):
        await publish(service, outage)
        await publish(service, event("likely"), outage)
        await publish(service, event("likely", "closed"))
    assert receiver.changes() == [("opened", "ev1", "likely"), ("closed", "ev1", "likely")]
    lines = [r.getMessage() for r in caplog.records if r.name == "kuzot.notify"]
    assert lines == ["notification sent to webhook: opened ev1 (block likely open)",
                     "notification sent to webhook: closed ev1 (block likely closed)"]
