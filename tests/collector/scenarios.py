"""Expands a detection scenario (``tests/scenarios/detection/*.json``) into what a collector
receives: heartbeats, and measurements in the probe's own envelope (``probe.core.measurement``)
with web connectivity and connectivity test keys shaped as the probe writes them.

A scenario names its networks (``asns``: ASN -> number of probes), a number of targets, a
duration and its incidents; everything is deterministic (no randomness), so the expected
events can be stated exactly. Probe ``i`` of an ASN heartbeats every 60 s at second ``i`` and
runs a round every 5 minutes at second ``10 * i``; its measurements and its upload reach the
collector 30 s after the round. During a shutdown of its ASN it neither heartbeats nor runs
targets; it climbs its ladder every minute and uploads those readings 30 s after the end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from probe.core.measurement import envelope
from probe.core.typed_config import parse_duration
from tests.helpers.paths import REPO

BASE = datetime(2024, 3, 1, tzinfo=UTC).timestamp()
CYCLE = 300.0
HEARTBEAT = 60.0
UPLOAD_DELAY = 30.0
SCENARIOS = REPO / "tests" / "scenarios" / "detection"


@dataclass(frozen=True, slots=True)
class Arrival:
    at: float  # when the collector receives it
    probe_id: str
    heartbeat: dict[str, Any] | None = None
    measurement: dict[str, Any] | None = None


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((SCENARIOS / f"{name}.json").read_text())
    return data


def names() -> list[str]:
    return sorted(p.stem for p in SCENARIOS.glob("*.json"))


def target_url(index: int) -> str:
    return f"https://news{index}.example/"


def _window(incident: dict[str, Any], base: float) -> tuple[float, float]:
    return base + parse_duration(incident["from"]), base + parse_duration(incident["to"])


def _applies(incident: dict[str, Any], asn: str, t: float, base: float,
             target: int | None = None, probe_id: str | None = None) -> bool:
    start, end = _window(incident, base)
    if not start <= t < end:
        return False
    if "probe" in incident:
        return bool(incident["probe"] == probe_id)
    asns = incident.get("asns", "all")
    if asns != "all" and asn not in asns:
        return False
    return target is None or "targets" not in incident or target in incident["targets"]


def _web_keys(url: str, verdict: str, layer: str | None, mechanism: str | None,
              evidence: list[str], handshake: float | None) -> dict[str, Any]:
    host = url.split("/")[2]
    handshakes = []
    if handshake is not None:
        handshakes.append({"address": "203.0.113.7:443", "server_name": host, "t0": 0.05,
                           "t": round(0.05 + handshake, 4), "failure": None,
                           "tls_version": "TLSv1.3", "peer_certificates": []})
    elif layer == "tls":
        handshakes.append({"address": "203.0.113.7:443", "server_name": host, "t0": 0.05,
                           "t": 10.05, "failure": "generic_timeout_error"})
    return {
        "queries": [], "tcp_connect": [], "tls_handshakes": handshakes, "requests": [],
        "control_failure": None, "blocking": layer if verdict == "blocked" else False,
        "accessible": verdict == "ok",
        "analysis": {"verdict": verdict, "layer": layer, "mechanism": mechanism,
                     "confidence": 0.9, "evidence": evidence},
    }


def _run(scenario: dict[str, Any], asn: str, probe_id: str, index: int, t: float,
         base: float) -> dict[str, Any]:
    url = target_url(index)
    handshake = 0.12 + 0.01 * index
    verdict, layer, mechanism, evidence = "ok", None, None, ["https_status:200"]
    test_name = "web_connectivity"
    for incident in scenario["incidents"]:
        if not _applies(incident, asn, t, base, index, probe_id):
            continue
        kind = incident["type"]
        if kind in ("block", "broken_probe"):
            verdict, layer, mechanism = "blocked", incident["layer"], incident["mechanism"]
            evidence, handshake = list(incident["evidence"]), None
        elif kind == "site_down":
            verdict, layer, mechanism = "down", "tcp", "timeout"
            evidence, handshake = ["probe_tcp:generic_timeout_error", "control_tcp:failed"], None
        elif kind == "throttle":
            test_name = "throttling"
            verdict, mechanism = "throttled", "sni_throttle"
            evidence = [f"slowdown:{incident['factor']}"]
            handshake *= incident["factor"]
    keys = _web_keys(url, verdict, layer, mechanism, evidence, handshake)
    return envelope(test_name=test_name, input_=url, test_keys=keys,
                    started=datetime.fromtimestamp(t, UTC), runtime=1.0,
                    cc=scenario["cc"], asn=asn, probe_id=probe_id)


def _ladder(scenario: dict[str, Any], asn: str, probe_id: str, t: float,
            cause: str | None) -> dict[str, Any]:
    rungs = {"gateway": {"reachable": True}, "resolver": {"reachable": True},
             "domestic": {"reachable": True, "reached": 1, "tried": 1},
             "foreign": {"reachable": True, "reached": 3, "tried": 3}}
    summary = "online"
    if cause == "international_cut":
        rungs["foreign"] = {"reachable": False, "reached": 0, "tried": 3}
        summary = ("international cut: gateway reachable, resolver answers, domestic hosts "
                   "reachable, foreign hosts unreachable")
    elif cause == "isp_outage":
        rungs["resolver"] = {"reachable": False}
        rungs["domestic"] = {"reachable": False, "reached": 0, "tried": 1}
        rungs["foreign"] = {"reachable": False, "reached": 0, "tried": 3}
        summary = "no connectivity: gateway reachable, resolver fails, foreign hosts unreachable"
    keys = {"rungs": rungs, "gateway_known": True,
            "analysis": {"online": cause is None, "summary": summary}}
    return envelope(test_name="connectivity", input_=None, test_keys=keys,
                    started=datetime.fromtimestamp(t, UTC), runtime=0.5,
                    cc=scenario["cc"], asn=asn, probe_id=probe_id)


def expand(scenario: dict[str, Any], base: float = BASE) -> list[Arrival]:
    """Everything the collector receives during the scenario (which begins at ``base``), in
    arrival order."""
    end = base + parse_duration(scenario["duration"])
    arrivals: list[Arrival] = []
    shutdowns = [i for i in scenario["incidents"] if i["type"] == "shutdown"]
    for asn, count in scenario["asns"].items():
        for i in range(count):
            probe_id = f"{asn.lower()}-{i}"

            def dark(t: float, asn: str = asn) -> dict[str, Any] | None:
                return next((s for s in shutdowns if _applies(s, asn, t, base)), None)

            t = base + i
            while t < end:
                if dark(t) is None:
                    arrivals.append(Arrival(t, probe_id, heartbeat={
                        "probe_id": probe_id, "sent_at": datetime.fromtimestamp(t, UTC)
                        .strftime("%Y-%m-%dT%H:%M:%SZ"), "queue_depth": 0,
                        "probe_cc": scenario["cc"], "probe_asn": asn}))
                t += HEARTBEAT
            t = base + 10 * i
            while t < end:
                shutdown = dark(t)
                if shutdown is None:
                    batch = [_ladder(scenario, asn, probe_id, t, None)]
                    batch += [_run(scenario, asn, probe_id, k, t + k, base)
                              for k in range(scenario["targets"])]
                    arrivals += [Arrival(t + UPLOAD_DELAY, probe_id, measurement=m)
                                 for m in batch]
                t += CYCLE
            for shutdown in shutdowns:
                start, stop = _window(shutdown, base)
                if not _applies(shutdown, asn, start, base):
                    continue
                readings = []
                t = start + 20 + i
                while t < stop:
                    readings.append(_ladder(scenario, asn, probe_id, t, shutdown["ladder"]))
                    t += 60.0
                arrivals += [Arrival(stop + UPLOAD_DELAY, probe_id, measurement=m)
                             for m in readings]
    arrivals.sort(key=lambda a: (a.at, a.probe_id))
    return arrivals



async def store_arrivals(store: Any, arrivals: list[Arrival]) -> None:
    """Store ``arrivals`` as the collector's ingest would, each at the time it arrived:
    heartbeats one by one, measurements validated and written as one batch."""
    from collector.api.validate import validate
    from collector.config import Limits

    batch = []
    for arrival in arrivals:
        moment = datetime.fromtimestamp(arrival.at, UTC)
        if arrival.heartbeat is not None:
            await store.add_heartbeat(arrival.probe_id, arrival.heartbeat["sent_at"],
                                      moment.strftime("%Y-%m-%d %H:%M:%S"),
                                      json.dumps(arrival.heartbeat))
        else:
            batch.append(validate(arrival.measurement, Limits(), moment, arrival.probe_id))
    await store.add_measurements(batch)


def due(arrivals: list[Arrival], index: int, now: float) -> tuple[list[Arrival], int]:
    """The arrivals from ``index`` on that have arrived by ``now``, and the next index."""
    end = index
    while end < len(arrivals) and arrivals[end].at <= now:
        end += 1
    return arrivals[index:end], end
