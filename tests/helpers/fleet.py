"""A real collector on loopback fed the way a small probe fleet would feed it.

Measurements are built in the wire format (design §2) with the phases and verdicts a test
needs, and go through the real ingest API with real tokens; heartbeats likewise. Events are
published through the collector's event book, the interface detection uses.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from collector.api.tokens import new_token, token_hash
from collector.app import create_app
from collector.config import Auth, CollectorConfig
from collector.detect.params import DetectionConfig
from collector.keys import eventbook_key, store_key
from collector.notify.config import Notifications
from probe.core.measurement import envelope
from tests.helpers.servers import serve_app

# (phase durations in seconds) for a quick page, a slow (throttled) one, and a baseline.
FAST = {"resolve": 0.02, "connect": 0.04, "tls": 0.08, "processing": 0.09, "transfer": 0.3}
SLOW = {"resolve": 0.02, "connect": 0.04, "tls": 2.0, "processing": 3.0, "transfer": 20.0}


def web_measurement(target: str, cc: str, asn: str, *, verdict: str = "ok",
                    layer: str | None = None, mechanism: str | None = None,
                    phases: dict[str, float] | None = None,
                    started: datetime | None = None) -> dict[str, Any]:
    """A web_connectivity measurement whose records carry the given phase durations.

    A blocked one stops at its failing layer, as a real probe's records would.
    """
    phases = phases if phases is not None else FAST
    clock = 0.0

    def span(name: str) -> tuple[float, float]:
        nonlocal clock
        start, clock = clock, clock + phases[name]
        return start, clock

    keys: dict[str, Any] = {"queries": [], "tcp_connect": [], "tls_handshakes": [],
                            "requests": []}
    failed = layer if verdict == "blocked" else None
    t0, t = span("resolve")
    keys["queries"].append({"engine": "getaddrinfo", "hostname": target, "t0": t0, "t": t,
                            "failure": "dns_nxdomain_error" if failed == "dns" else None,
                            "answers": []})
    if failed != "dns":
        t0, t = span("connect")
        keys["tcp_connect"].append({"ip": "192.0.2.10", "port": 443, "t0": t0, "t": t,
                                    "status": {"success": failed != "tcp", "failure": None,
                                               "blocked": None}})
    if failed not in ("dns", "tcp"):
        t0, t = span("tls")
        keys["tls_handshakes"].append({"server_name": target, "t0": t0, "t": t,
                                       "failure": "generic_timeout_error"
                                       if failed == "tls" else None})
    if failed is None:
        t0, ttfb = span("processing")
        _, t = span("transfer")
        keys["requests"].append({"failure": None, "t0": t0, "x_ttfb": ttfb, "t": t})
    keys["analysis"] = {"verdict": verdict, "layer": layer, "mechanism": mechanism,
                        "confidence": 0.9, "evidence": []}
    return envelope(test_name="web_connectivity", input_=target, test_keys=keys,
                    started=started or datetime.now(UTC) - timedelta(seconds=90),
                    runtime=clock, cc=cc, asn=asn)


# probe id, country, network, and what each target looks like from there.
FLEET: list[tuple[str, str, str, list[tuple[str, dict[str, Any]]]]] = [
    ("kz-almaty-1", "KZ", "AS9198", [
        ("https://rus.azattyq.org/", {"verdict": "throttled", "phases": SLOW}),
        ("https://i.pinimg.com/favicon.ico", {}),
        ("https://vlast.kz/", {"verdict": "blocked", "layer": "tls", "mechanism": "timeout"}),
    ]),
    ("kz-astana-1", "KZ", "AS48716", [
        ("https://rus.azattyq.org/", {}),
        ("https://i.pinimg.com/favicon.ico", {}),
        ("https://vlast.kz/", {}),
    ]),
    ("kg-bishkek-1", "KG", "AS8449", [
        ("https://kloop.kg/", {}),
        ("https://24.kg/", {"verdict": "blocked", "layer": "dns", "mechanism": "nxdomain"}),
    ]),
]


def fleet_events(now: datetime) -> list[dict[str, Any]]:
    """Three open events in the JSON of design §4, as detection would publish them."""
    def iso(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    return [
        {"id": "ev-kg-shutdown", "kind": "shutdown", "tier": "likely", "status": "open",
         "start": iso(now - timedelta(hours=2, minutes=5)), "end": None,
         "updated_at": iso(now), "cc": "KG", "asns": ["AS8449"], "targets": [],
         "mechanism": None, "probes": 4,
         "evidence": {"silent_probes": "4 of 5", "ladder": "gateway ok, foreign anycast lost"}},
        {"id": "ev-kz-block", "kind": "block", "tier": "confirmed", "status": "open",
         "start": iso(now - timedelta(days=2)), "end": None, "updated_at": iso(now),
         "cc": "KZ", "asns": ["AS9198"], "targets": ["https://vlast.kz/"],
         "mechanism": "tls_timeout", "probes": 6,
         "evidence": {"blocked_share_lower_bound": 0.91, "control": "reachable"}},
        {"id": "ev-kz-throttle", "kind": "throttling", "tier": "suspected", "status": "open",
         "start": iso(now - timedelta(minutes=40)), "end": None, "updated_at": iso(now),
         "cc": "KZ", "asns": ["AS9198"], "targets": ["https://rus.azattyq.org/"],
         "mechanism": "sni_throttle", "probes": 1, "evidence": {"ttfb_ratio": 33.3}},
    ]


@dataclasses.dataclass
class RunningCollector:
    base: str
    app: web.Application
    tokens: dict[str, str]

    async def publish(self, events: list[dict[str, Any]]) -> None:
        await self.app[eventbook_key].publish(events)

    async def post(self, path: str, body: Any, probe_id: str) -> aiohttp.ClientResponse:
        headers = {"Authorization": f"Bearer {self.tokens[probe_id]}"}
        async with aiohttp.ClientSession() as session, session.post(
                self.base + path, json=body, headers=headers) as response:
            await response.read()
            return response

    async def feed_wave(self, queue_depth: int = 0) -> None:
        """One round of the fleet: every probe's measurements, a heartbeat, and one bad
        measurement (so the rejection counters have something to count)."""
        for probe_id, cc, asn, targets in FLEET:
            batch = []
            for target, shape in targets:
                measurement = web_measurement(target, cc, asn,
                                              verdict=shape.get("verdict", "ok"),
                                              layer=shape.get("layer"),
                                              mechanism=shape.get("mechanism"),
                                              phases=shape.get("phases"))
                measurement["measurement_uid"] = f"{probe_id}-{uuid.uuid4().hex}"
                batch.append(measurement)
            response = await self.post("/api/v1/measurements", {"measurements": batch},
                                       probe_id)
            assert response.status == 200, response.status
            response = await self.post(
                "/api/v1/heartbeat", {"probe_id": probe_id, "queue_depth": queue_depth,
                                      "sent_at": datetime.now(UTC).isoformat()}, probe_id)
            assert response.status == 200, response.status
        bad = web_measurement("https://kloop.kg/", "KG", "AS8449")
        bad["probe_cc"] = "kg"
        response = await self.post("/api/v1/measurements", bad, "kg-bishkek-1")
        assert response.status == 400


@contextlib.asynccontextmanager
async def running_collector(tmp_path: Path, notifications: Notifications | None = None,
                            public_url: str | None = None,
                            detection: DetectionConfig | None = None,
                            probes: tuple[str, ...] | None = None,
                            ) -> AsyncIterator[RunningCollector]:
    """The collector with a token for each of ``probes`` (default: the probes of FLEET);
    ``detection`` replaces the default detection section (e.g. seconds-long bins)."""
    # The operator's target list: only these URLs become metric labels.
    targets = tuple(dict.fromkeys(t for *_, pairs in FLEET for t, _ in pairs))
    config = CollectorConfig(database=str(tmp_path / "kuzot.sqlite"), targets=targets,
                             auth=Auth(require_token=True), public_url=public_url,
                             notifications=notifications or Notifications(
                                 state_file=str(tmp_path / "notify-state.json")),
                             detection=detection or DetectionConfig())
    app = create_app(config)
    async with serve_app(app) as port:
        tokens = {}
        for probe_id in probes or tuple(p for p, *_ in FLEET):
            token = new_token()
            await app[store_key].add_token(probe_id, token_hash(token),
                                           datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"))
            tokens[probe_id] = token
        yield RunningCollector(f"http://127.0.0.1:{port}", app, tokens)
