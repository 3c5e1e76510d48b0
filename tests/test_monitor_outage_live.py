"""The monitor's own outage is not the Internet's: the real collector is taken away for several
detection bins in the middle of a fleet's run and brought back on the same database.

The collector is the probes' control and the last rung of their ladder, so while it is gone
every probe records what a real one records then: the control refused, and (the worst case,
seen in the field) its own attempts failing too; ladder readings that lost the collector.
The probes keep all that and upload it with the original timestamps when the collector is back.
Detection must tell researchers the monitor was down (a ``monitor_outage`` event, shown on the
status page) and raise nothing above ``suspected``; the notifier, with a webhook that would
hear even ``suspected`` events, must send nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from collector.config import Auth, CollectorConfig
from collector.detect.params import BlockParams, DetectionConfig, SilenceParams
from collector.notify.config import Notifications, Webhook
from probe.core.measurement import envelope
from probe.nettests.connectivity import ladder as connectivity
from tests.helpers.collector import SwitchableCollector, issue_token
from tests.helpers.fleet import web_measurement
from tests.helpers.ports import free_port
from tests.helpers.servers import serve_app

BIN = 2.0
PROBES = [(f"kg-{i}", "KG", "AS8449") for i in range(4)] + \
    [(f"kz-{i}", "KZ", "AS9198") for i in range(3)]
TARGETS = [f"https://site{i}.example/" for i in range(5)]
UP_ROUNDS, DOWN_ROUNDS, AFTER_ROUNDS = 4, 5, 5


def detection() -> DetectionConfig:
    """Bins of two seconds judged a second after they end; heartbeats every two seconds."""
    return dataclasses.replace(
        DetectionConfig(), interval=0.5,
        block=dataclasses.replace(BlockParams(), bin=BIN, settle=1.0),
        silence=dataclasses.replace(SilenceParams(), heartbeat_interval=BIN, grace=BIN,
                                    bin=BIN))


def round_of(probe_id: str, cc: str, asn: str, started: datetime,
             collector_up: bool) -> list[dict[str, Any]]:
    """One round of a probe: its targets and its ladder, as recorded at ``started``."""
    batch = []
    for target in TARGETS:
        if collector_up:
            measurement = web_measurement(target, cc, asn, started=started)
        else:
            measurement = web_measurement(target, cc, asn, verdict="blocked", layer="tcp",
                                          mechanism="timeout", started=started)
            keys = measurement["test_keys"]
            keys["control_failure"] = "connection_refused"
            keys["http_experiment_failure"] = "generic_timeout_error"
            keys["analysis"] = {"verdict": "inconclusive", "layer": "tcp",
                                "mechanism": "timeout", "confidence": 0.0,
                                "evidence": ["probe_tcp:generic_timeout_error",
                                             "control_failure:connection_refused"]}
        batch.append(measurement)
    rungs = {"gateway": {"reachable": True}, "resolver": {"reachable": True},
             "collector": {"reachable": collector_up, "reached": int(collector_up),
                           "tried": 1}}
    online, summary = connectivity.summarise({"rungs": rungs, "gateway_known": True})
    batch.append(envelope(test_name="connectivity", input_=None, test_keys={
        "rungs": rungs, "gateway_known": True,
        "analysis": {"online": online, "summary": summary}},
        started=started, runtime=0.5, cc=cc, asn=asn))
    for measurement in batch:
        measurement["measurement_uid"] = f"{probe_id}-{uuid.uuid4().hex}"
    return batch


class Hook:
    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append(await request.json())
        return web.Response(text="ok")


@asynccontextmanager
async def webhook() -> AsyncIterator[tuple[Hook, int]]:
    hook = Hook()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    async with serve_app(app) as port:
        yield hook, port


async def upload(session: aiohttp.ClientSession, base: str, token: str, probe_id: str,
                 queue: list[dict[str, Any]]) -> bool:
    """Send the queue and a heartbeat; False (queue kept) when the collector is not there."""
    headers = {"Authorization": f"Bearer {token}"}
    try:
        for start in range(0, len(queue), 200):
            async with session.post(f"{base}/api/v1/measurements", headers=headers,
                                    json={"measurements": queue[start:start + 200]}) as r:
                assert r.status == 200, await r.text()
        async with session.post(f"{base}/api/v1/heartbeat", headers=headers, json={
                "probe_id": probe_id, "sent_at": datetime.now(UTC).isoformat(),
                "queue_depth": 0}) as r:
            assert r.status == 200
    except aiohttp.ClientConnectionError:
        return False
    queue.clear()
    return True


async def test_a_collector_restart_mid_run_is_a_monitor_outage_not_a_shutdown(
        tmp_path: Path) -> None:
    async with webhook() as (hook, hook_port):
        config = CollectorConfig(
            database=str(tmp_path / "kuzot.sqlite"), auth=Auth(require_token=True),
            detection=detection(),
            notifications=Notifications(
                webhooks=(Webhook(url=f"http://127.0.0.1:{hook_port}/hook", secret="k",
                                  min_tier="suspected"),),
                state_file=str(tmp_path / "notify.json")))
        tokens = {p: await issue_token(config, p) for p, _, _ in PROBES}
        collector = SwitchableCollector(config, free_port())
        await collector.start()
        queues: dict[str, list[dict[str, Any]]] = {p: [] for p, _, _ in PROBES}
        uploaded_late = 0
        try:
            async with aiohttp.ClientSession() as session:
                for number in range(UP_ROUNDS + DOWN_ROUNDS + AFTER_ROUNDS):
                    await asyncio.sleep(BIN - time.time() % BIN + 0.1)  # just after a bin opens
                    if number == UP_ROUNDS:
                        await collector.stop()
                    if number == UP_ROUNDS + DOWN_ROUNDS:
                        await collector.start()
                    started = datetime.now(UTC)
                    for probe_id, cc, asn in PROBES:
                        queues[probe_id] += round_of(probe_id, cc, asn, started, collector.up)
                        waiting = len(queues[probe_id])
                        if await upload(session, collector.base, tokens[probe_id], probe_id,
                                        queues[probe_id]) and waiting > 6:
                            uploaded_late += waiting - 6
                # Let detection judge the last bins.
                await asyncio.sleep(BIN + 2.0)
                async with session.get(f"{collector.base}/api/v1/events") as response:
                    events = (await response.json())["events"]
                async with session.get(
                        f"{collector.base}/api/v1/events?kind=monitor_outage") as response:
                    assert response.status == 200
                    filtered = (await response.json())["events"]
                async with session.get(collector.base + "/") as response:
                    page = await response.text()
                async with session.get(collector.base + "/metrics") as response:
                    metrics = await response.text()
        finally:
            await collector.stop()

    # The backlog of the outage did reach the collector, with its original timestamps.
    assert uploaded_late == len(PROBES) * DOWN_ROUNDS * 6
    outages = [e for e in events if e["kind"] == "monitor_outage"]
    others = [e for e in events if e["kind"] != "monitor_outage"]
    assert [(e["mechanism"], e["status"], e["cc"]) for e in outages] == [
        ("collector_down", "closed", "ZZ")], events
    assert filtered == outages
    down = outages[0]["evidence"]["down_seconds"]
    assert (DOWN_ROUNDS - 1) * BIN <= down <= (DOWN_ROUNDS + 2) * BIN
    assert [e for e in others if e["tier"] != "suspected"] == [], others
    assert hook.got == []
    assert "Monitor outage" in page and "The collector was down." in page
    assert 'kuzot_monitor_outages_total{cause="collector_down"} 1.0' in metrics
    assert 'kind="monitor_outage"' not in metrics  # nothing for alerting to fire on
