"""Every query of every dashboard, run by a real Prometheus that scrapes a real collector.

The collector runs on loopback and is fed by a small fleet through its HTTP API (two rounds,
so rates have something to measure), with three events published the way detection publishes
them. Prometheus uses the job of configs/prometheus.yml and scrapes every second. Each panel
query, each annotation query and each variable query is then run as Grafana would run it (with
"All" for multi-value variables and a chosen target), and must return data without error.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from collector.notify.config import Notifications, Retry, Webhook
from dashboards import build
from tests.helpers.fleet import fleet_events, running_collector
from tests.helpers.monitoring import binary, prometheus, query
from tests.helpers.ports import free_port
from tests.helpers.servers import serve_app

ROOT = Path(__file__).resolve().parent.parent
# The single-value variables, per dashboard: a target blocked on one network and reachable on
# another; a target throttled on one network, and its co-hosted baseline.
CHOSEN = {
    "target": {"target": "https://vlast.kz/"},
    "throttling": {"target": "https://rus.azattyq.org/",
                   "baseline": "https://i.pinimg.com/favicon.ico"},
}
GRAFANA_RANGES = {"$__rate_interval": "30s", "$__interval": "5s", "$__range": "5m"}


def prometheus_config(collector: str, rules: Path | None = None,
                      alertmanager: str | None = None) -> str:
    """configs/prometheus.yml pointed at the test's collector, scraping every second."""
    config = yaml.safe_load((ROOT / "configs" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    jobs = [job for job in config["scrape_configs"] if job["job_name"] == "kuzot-collector"]
    jobs[0]["static_configs"][0]["targets"] = [collector.removeprefix("http://")]
    config["scrape_configs"] = jobs
    config["rule_files"] = [str(rules)] if rules else []
    if alertmanager:
        config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [
            alertmanager.removeprefix("http://")]
    else:
        del config["alerting"]
    return yaml.safe_dump(config)


def substitute(expr: str, values: dict[str, str]) -> str:
    for name, value in GRAFANA_RANGES.items():
        expr = expr.replace(name, value)
    for name, value in values.items():
        expr = re.sub(rf"\${name}\b", value, expr)
    assert "$" not in expr, expr
    return expr


# Families of components that are off by default and need what this fleet does not run.
# Outside-in probing sends raw packets (CAP_NET_RAW) to the configured /24s: its families,
# with these panels' labels, are scraped from a collector probing a namespace lab in
# tests/collector/outside/test_outside_service.py.
OPTIONAL_COMPONENT_FAMILIES = ("kuzot_outside_",)


def expr_needs_optional_component(expr: str) -> bool:
    return any(family in expr for family in OPTIONAL_COMPONENT_FAMILIES)


def has_finite_value(data: dict[str, Any]) -> bool:
    for series in data["result"]:
        points = series.get("values") or [series.get("value")]
        if any(p is not None and math.isfinite(float(p[1])) for p in points):
            return True
    return False


async def label_values(base: str, query_text: str) -> list[str]:
    """What Grafana's label_values(selector, label) shows, through Prometheus' label API."""
    match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query_text)
    assert match, query_text
    selector, label = match.groups()
    async with aiohttp.ClientSession() as session, session.get(
            f"{base}/api/v1/label/{label}/values", params={"match[]": selector}) as response:
        body = await response.json()
    assert body["status"] == "success", body
    return list(body["data"])


async def wait_for(base: str, expr: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await query(base, expr))["result"]:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"no data for {expr} within {timeout}s")


async def test_every_dashboard_query_returns_data(tmp_path: Path) -> None:
    binary("prometheus")
    received: list[Any] = []

    async def hook(request: aiohttp.web.Request) -> aiohttp.web.Response:
        received.append(await request.json())
        return aiohttp.web.Response(text="ok")

    receiver = aiohttp.web.Application()
    receiver.router.add_post("/hook", hook)
    async with serve_app(receiver) as hook_port:
        notifications = Notifications(
            state_file=str(tmp_path / "notify-state.json"),
            retry=Retry(attempts=2, initial=0.01, maximum=0.02),
            webhooks=(
                Webhook(name="researchers-hook", url=f"http://127.0.0.1:{hook_port}/hook",
                        secret="s3cret", min_tier="suspected"),
                # Nothing listens here: its messages are retried, then dropped and counted.
                Webhook(name="broken-hook", url=f"http://127.0.0.1:{free_port()}/hook",
                        secret="s3cret", min_tier="suspected", timeout=1.0),
            ))
        async with running_collector(tmp_path, notifications) as collector:
            await collector.publish(fleet_events(datetime.now(UTC)))
            async with prometheus(prometheus_config(collector.base), tmp_path) as prom:
                await wait_for(prom, 'up{job="kuzot-collector"} == 1')
                await collector.feed_wave(queue_depth=40)
                await asyncio.sleep(2.5)
                await collector.feed_wave(queue_depth=55)
                await wait_for(prom, "kuzot_notifications_dropped_total > 0")
                await asyncio.sleep(2.5)
                await check_dashboards(prom)
    assert received, "the working webhook got no message"


async def check_dashboards(prom: str) -> None:
    end = time.time()
    span = {"start": end - 60, "end": end, "step": 1}
    checked = 0
    for name in build.DASHBOARDS:
        dashboard = json.loads((ROOT / "dashboards" / f"{name}.json").read_text())
        values = {}
        chosen = CHOSEN.get(name, {})
        for variable in dashboard["templating"]["list"]:
            query_text = substitute(variable["query"], {**chosen, "cc": ".*", "asn": ".*"})
            options = await label_values(prom, query_text)
            assert options, f"{name}: variable {variable['name']} has no values"
            if variable["multi"]:
                values[variable["name"]] = variable["allValue"]
            else:
                assert chosen[variable["name"]] in options, (variable["name"], options)
                values[variable["name"]] = chosen[variable["name"]]
        queries = [(f"annotation {a['name']}", a["expr"])
                   for a in dashboard["annotations"]["list"]]
        queries += [(panel["title"], target["expr"]) for panel in dashboard["panels"]
                    for target in panel["targets"]]
        for title, expr in queries:
            data = await query(prom, substitute(expr, values), **span)
            if expr_needs_optional_component(expr):
                # Prometheus accepted the query (query() fails on an error answer); its data
                # is checked where the component runs for real.
                continue
            assert has_finite_value(data), f"{name}: {title!r} returned no data: {expr}"
            checked += 1
    assert checked >= 30

    # A few key numbers, to show the data is the right data and not merely present.
    opened = await query(prom, substitute(
        'count(count by (event_id) (kuzot_event_active{kind="block",cc=~"$cc"}))',
        {"cc": ".*"}))
    assert float(opened["result"][0]["value"][1]) == 1
    ratio = await query(prom, substitute(
        build._median('target="$target",phase="tls",asn=~"$asn"', "asn") + " / "
        + build._median('target="$baseline",phase="tls",asn=~"$asn"', "asn"),
        {**CHOSEN["throttling"], "asn": ".*"}))
    by_asn = {s["metric"]["asn"]: float(s["value"][1]) for s in ratio["result"]}
    assert by_asn["AS9198"] >= 10, by_asn      # 2 s against 0.08 s: extreme throttling
    assert by_asn["AS48716"] < 2, by_asn       # the same target at parity on another network
    depth = await query(prom, "sum(kuzot_probe_queue_depth)")
    assert float(depth["result"][0]["value"][1]) == 3 * 55
