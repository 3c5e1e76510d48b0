"""Alerting on real components: Alertmanager from Debian with the repository's routes and
inhibition rules, and the whole chain collector -> Prometheus (the repository's rules) ->
Alertmanager -> webhook receivers on loopback, once with events published into the event
book and once with events that detection produces from measurements uploaded over HTTP.

The only changes made to configs/alertmanager.yml for the tests: receiver URLs point at the
test's receiver, and group waits are one second instead of thirty so the tests stay short.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from collector.detect.params import BlockParams, DetectionConfig
from tests.helpers.fleet import RunningCollector, fleet_events, running_collector, web_measurement
from tests.helpers.monitoring import alertmanager, binary, prometheus
from tests.helpers.servers import serve_app
from tests.test_dashboards_live import prometheus_config

ROOT = Path(__file__).resolve().parent.parent


class Receivers:
    """A webhook receiver standing in for each Alertmanager receiver; keeps what arrives."""

    def __init__(self) -> None:
        self.got: dict[str, list[dict[str, Any]]] = {}

    async def handle(self, request: web.Request) -> web.Response:
        self.got.setdefault(request.match_info["name"], []).append(await request.json())
        return web.Response(text="ok")

    def alerts(self, name: str) -> list[dict[str, Any]]:
        return [a for n in self.got.get(name, []) for a in n["alerts"]]

    def alertnames(self, name: str) -> set[tuple[str, str, str]]:
        return {(a["labels"]["alertname"], a["labels"].get("event_id", ""),
                 a["labels"].get("asn", "")) for a in self.alerts(name)}


@asynccontextmanager
async def receivers() -> AsyncIterator[tuple[Receivers, int]]:
    state = Receivers()
    app = web.Application()
    app.router.add_post("/kuzot/{name}", state.handle)
    async with serve_app(app) as port:
        yield state, port


def alertmanager_config(port: int) -> str:
    config = yaml.safe_load((ROOT / "configs" / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = f"http://127.0.0.1:{port}/kuzot/{receiver['name']}"

    def shorten(route: dict[str, Any]) -> None:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = "1s"
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    return yaml.safe_dump(config)


def alert(name: str, **labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"labels": {"alertname": name, **labels},
            "annotations": {"summary": name, "description": name, "link": "http://x/"},
            "startsAt": now.isoformat(), "endsAt": (now + timedelta(minutes=10)).isoformat()}


async def until(check: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("condition not met in time")


async def test_routes_group_by_event_and_a_shutdown_inhibits_its_network(
        tmp_path: Path) -> None:
    binary("prometheus-alertmanager", "alertmanager")
    async with receivers() as (got, port), alertmanager(alertmanager_config(port),
                                                        tmp_path) as am:
        block = {"kind": "block", "cc": "KZ", "scope": "network", "level": "event",
                 "mechanism": "tls_timeout"}
        alerts = [
            # One likely event on two networks: one thread for media partners.
            alert("KuzotBlock", event_id="ev-b", tier="likely", asn="AS9198", **block),
            alert("KuzotBlock", event_id="ev-b", tier="likely", asn="AS48716", **block),
            # A suspected event: researchers only.
            alert("KuzotBlock", event_id="ev-s", tier="suspected", asn="AS9198", **block),
            # A shutdown of AS8449 and per-target alerts on it (inhibited) and elsewhere.
            alert("KuzotShutdown", event_id="ev-sd", tier="likely", kind="shutdown", cc="KG",
                  asn="AS8449", scope="network", level="event"),
            alert("KuzotTargetBlocked", cc="KG", asn="AS8449", target="https://kloop.kg/",
                  level="target", audience="researchers"),
            alert("KuzotBlock", event_id="ev-in", tier="likely", asn="AS8449",
                  **{**block, "cc": "KG"}),
            alert("KuzotTargetBlocked", cc="KG", asn="AS50223", target="https://kloop.kg/",
                  level="target", audience="researchers"),
            alert("KuzotProbeSilent", probe_id="osh-2", audience="operators"),
        ]
        async with aiohttp.ClientSession() as session, session.post(
                am + "/api/v2/alerts", json=alerts) as response:
            assert response.status == 200, await response.text()

        await until(lambda: len(got.alerts("researchers")) >= 5 and got.alerts("operators"))
        await asyncio.sleep(2.5)   # two group intervals more: anything late would show now

    media = got.got["media-partners"]
    threads = {tuple(sorted(n["groupLabels"].items())) for n in media}
    assert threads == {(("event_id", "ev-b"),), (("event_id", "ev-sd"),)}
    ev_b = [n for n in media if n["groupLabels"] == {"event_id": "ev-b"}]
    assert len(ev_b) == 1 and len(ev_b[0]["alerts"]) == 2   # one message for both networks
    assert got.alertnames("media-partners") == {
        ("KuzotBlock", "ev-b", "AS9198"), ("KuzotBlock", "ev-b", "AS48716"),
        ("KuzotShutdown", "ev-sd", "AS8449")}
    assert got.alertnames("researchers") == {
        ("KuzotBlock", "ev-b", "AS9198"), ("KuzotBlock", "ev-b", "AS48716"),
        ("KuzotBlock", "ev-s", "AS9198"), ("KuzotShutdown", "ev-sd", "AS8449"),
        ("KuzotTargetBlocked", "", "AS50223")}
    # Inhibited by the shutdown of AS8449: the per-target alert and the block on it.
    assert got.alertnames("operators") == {("KuzotProbeSilent", "", "")}


async def test_collector_events_reach_receivers_through_prometheus_and_alertmanager(
        tmp_path: Path) -> None:
    binary("prometheus")
    binary("prometheus-alertmanager", "alertmanager")
    status_url = "https://status.kuzot.example"
    async with receivers() as (got, port), alertmanager(alertmanager_config(port),
                                                        tmp_path) as am, running_collector(
            tmp_path, public_url=status_url) as collector:
        await collector.publish(fleet_events(datetime.now(UTC)))
        config = yaml.safe_load(prometheus_config(collector.base, ROOT / "configs" / "alerts.yml",
                                                  am))
        config["global"]["external_labels"]["kuzot_status_url"] = status_url
        async with prometheus(yaml.safe_dump(config), tmp_path):
            await until(lambda: len(got.alertnames("researchers")) >= 3, timeout=30)
            await asyncio.sleep(2)

    # The throttling event is only suspected: researchers hear it, media partners do not.
    assert got.alertnames("researchers") == {
        ("KuzotShutdown", "ev-kg-shutdown", "AS8449"), ("KuzotBlock", "ev-kz-block", "AS9198"),
        ("KuzotThrottling", "ev-kz-throttle", "AS9198")}
    assert got.alertnames("media-partners") == {
        ("KuzotShutdown", "ev-kg-shutdown", "AS8449"), ("KuzotBlock", "ev-kz-block", "AS9198")}
    shutdown = next(a for a in got.alerts("media-partners")
                    if a["labels"]["alertname"] == "KuzotShutdown")
    # The event in plain words from kuzot_event_info, in English and Russian.
    assert shutdown["annotations"]["summary"] == "Internet shutdown in Kyrgyzstan (likely)"
    assert shutdown["annotations"]["summary_ru"] == \
        "Отключение интернета: Кыргызстан (вероятно)"
    description = shutdown["annotations"]["description"]
    assert description.startswith("Internet access is cut off. Kyrgyzstan, on ElCat (AS8449). "
                                  "Since ")
    assert "local time (" in description and "Likely: seen by 4 probes" in description
    assert shutdown["annotations"]["link"] == f"{status_url}/events/ev-kg-shutdown"
    assert shutdown["labels"]["tier"] == "likely"


# Measurements that detection turns into events, in seconds: two-second bins judged one
# second after they end, the pipeline running twice a second; the tiers' rules are the
# defaults. Three probes on AS9198 find one site blocked (a "likely" event once two rounds
# agree); the only probe on AS8449 finds another one blocked (one probe stays "suspected").
DETECTION_BIN = 2.0
KZ_PROBES = ("kz-9198-a", "kz-9198-b", "kz-9198-c")
KG_PROBE = "kg-8449-a"
REACHABLE = ("https://i.pinimg.com/favicon.ico", "https://rus.azattyq.org/",
             "https://kloop.kg/")


def fast_detection() -> DetectionConfig:
    return dataclasses.replace(
        DetectionConfig(), interval=0.5,
        block=dataclasses.replace(BlockParams(), bin=DETECTION_BIN, settle=1.0))


async def feed_rounds(collector: RunningCollector, stop: asyncio.Event) -> int:
    """One probe round per detection bin until ``stop``: every probe measures the reachable
    targets and its blocked one, and uploads at once (as a probe with a short cycle would)."""
    rounds = 0
    plan = [(probe, "KZ", "AS9198", "https://vlast.kz/", "tls", "timeout")
            for probe in KZ_PROBES]
    plan.append((KG_PROBE, "KG", "AS8449", "https://24.kg/", "dns", "nxdomain"))
    while not stop.is_set() and rounds < 30:
        # Start just after a bin opens, so the whole round lands in one bin.
        now = time.time()
        await asyncio.sleep(DETECTION_BIN - now % DETECTION_BIN + 0.1)
        started = datetime.now(UTC)
        for probe_id, cc, asn, blocked, layer, mechanism in plan:
            batch = [web_measurement(url, cc, asn, started=started) for url in REACHABLE]
            batch.append(web_measurement(blocked, cc, asn, verdict="blocked", layer=layer,
                                         mechanism=mechanism, started=started))
            for measurement in batch:
                measurement["measurement_uid"] = f"{probe_id}-{uuid.uuid4().hex}"
            response = await collector.post("/api/v1/measurements",
                                            {"measurements": batch}, probe_id)
            assert response.status == 200, response.status
        rounds += 1
    return rounds


async def test_measurements_become_an_alert_through_detection_prometheus_and_alertmanager(
        tmp_path: Path) -> None:
    binary("prometheus")
    binary("prometheus-alertmanager", "alertmanager")
    status_url = "https://status.kuzot.example"
    stop = asyncio.Event()
    async with receivers() as (got, port), alertmanager(alertmanager_config(port),
                                                        tmp_path) as am, running_collector(
            tmp_path, public_url=status_url, detection=fast_detection(),
            probes=(*KZ_PROBES, KG_PROBE)) as collector:
        config = yaml.safe_load(prometheus_config(collector.base, ROOT / "configs" / "alerts.yml",
                                                  am))
        config["global"]["external_labels"]["kuzot_status_url"] = status_url
        async with prometheus(yaml.safe_dump(config), tmp_path):
            feeding = asyncio.create_task(feed_rounds(collector, stop))
            try:
                await until(lambda: feeding.done() or (
                    any(a["labels"]["cc"] == "KZ" for a in got.alerts("media-partners"))
                    and any(a["labels"]["cc"] == "KG" for a in got.alerts("researchers"))),
                    timeout=60)
                await asyncio.sleep(2.5)   # two group intervals more: anything late shows now
            finally:
                stop.set()
                rounds = await feeding
        async with aiohttp.ClientSession() as session, session.get(
                collector.base + "/api/v1/events") as response:
            events = {e["cc"]: e for e in (await response.json())["events"]}

    # Detection wrote exactly these two events from the measurements.
    assert set(events) == {"KZ", "KG"}, (events, rounds)
    kz, kg = events["KZ"], events["KG"]
    assert (kz["kind"], kz["asns"], kz["targets"]) == ("block", ["AS9198"], ["https://vlast.kz/"])
    assert kz["tier"] in ("likely", "confirmed") and kz["probes"] == 3
    assert (kg["kind"], kg["tier"], kg["asns"]) == ("block", "suspected", ["AS8449"])

    # Media partners hear the likely event only, never at a lower tier; researchers hear both.
    media = got.alerts("media-partners")
    assert {(a["labels"]["alertname"], a["labels"]["event_id"], a["labels"]["asn"])
            for a in media} == {("KuzotBlock", kz["id"], "AS9198")}
    assert {a["labels"]["tier"] for a in media} <= {"likely", "confirmed"}
    assert {(n, e) for n, e, _ in got.alertnames("researchers")} >= {
        ("KuzotBlock", kz["id"]), ("KuzotBlock", kg["id"])}
    alert_kz = next(a for a in media if a["labels"]["tier"] == kz["tier"])
    assert alert_kz["annotations"]["link"] == f"{status_url}/events/{kz['id']}"
    assert alert_kz["annotations"]["summary"] == f"Blocking in Kazakhstan ({kz['tier']})"
    assert "Kazakhtelecom (AS9198)" in alert_kz["annotations"]["description"]
    # One event, one thread: every media notification is grouped by the KZ event's id.
    assert {tuple(n["groupLabels"].items()) for n in got.got["media-partners"]} == {
        (("event_id", kz["id"]),)}
