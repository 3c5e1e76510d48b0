"""Observations stored at ingest are what detection would have made of the bodies.

Detection reads the observation stored with each row (``collector.detect.observed``) instead
of decompressing and parsing its body; rows without one (stored before the column, copied
without it) or with one of other extraction rules are read from their body. Both paths must
give the same observations, measurement by measurement, and the same events over the scenario
corpus: the same stores are judged once from the stored observations, once from the bodies
(the column emptied, as on an upgraded database) and once with every observation of an older
version (which sends detection back to the bodies, by uid).
"""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from collector.api.validate import validate
from collector.config import Limits
from collector.detect import extract, observed
from collector.detect.model import LadderReading, Run
from collector.detect.params import DetectionConfig, NetworkRoles
from collector.detect.windows import Calendar
from collector.metrics.detection import DetectionMetrics, EventSnapshot
from collector.pipeline import Pipeline
from collector.store import EventFilter
from collector.store.sqlite import SQLiteStore
from probe.core.typed_config import parse_duration
from tests.collector import scenarios
from tests.collector.factory import measurement


@pytest.mark.parametrize("name", scenarios.names())
def test_the_stored_observation_is_the_one_extracted_from_the_stored_body(name: str) -> None:
    arrivals = scenarios.expand(scenarios.load(name))
    kinds: set[str] = set()
    for arrival in arrivals:
        if arrival.measurement is None:
            continue
        row = validate(arrival.measurement, Limits(), datetime.fromtimestamp(arrival.at, UTC),
                       arrival.probe_id)
        assert row.observation is not None
        expected = extract.observation(json.loads(row.body), arrival.probe_id)
        assert observed.decode(row.observation, arrival.probe_id) == expected
        kinds.add(type(expected).__name__)
    assert {"Run", "LadderReading"} & kinds  # something was compared


def test_an_input_that_is_no_url_is_observed_too() -> None:
    """``http://[x/`` is a string validation accepts and no URL parser reads: it is stored
    with its observation (no handshake host), not refused with a 500 or left to break
    detection."""
    row = validate(measurement(input="http://[x/"), Limits(), datetime.now(UTC), "p1")
    seen = observed.decode(str(row.observation), "p1")
    assert isinstance(seen, Run) and (seen.target, seen.handshake) == ("http://[x/", None)
    assert seen == extract.observation(json.loads(row.body), "p1")


def test_every_field_reads_back_exactly() -> None:
    run = Run(probe_id="p", cc="KZ", asn="AS9198", target="https://vlast.kz/ä?q=\"1\"",
              t=1714564800.123456, outcome="throttled", layer="tls", mechanism="mitm",
              fingerprint="issuer:Qaznet Trust Network", handshake=0.1 + 0.2,
              slowdown=math.pi, failed=True, control_failed=True)
    bare = Run(probe_id="p", cc="KG", asn="AS8449", target="facebook", t=1.0, outcome="ok")
    ladder = LadderReading(probe_id="p", cc="KG", asn="AS8449", t=1714564800.5, online=False,
                           cause="international_cut")
    for item in (run, bare, ladder, None):
        assert observed.decode(observed.encode(item), "p") == item
    assert observed.decode(observed.encode(run), "other") == \
        Run(**{**{f: getattr(run, f) for f in run.__slots__}, "probe_id": "other"})


@pytest.mark.parametrize("text", [
    "[0]", "[2]", '[0,"ladder","KG","AS1",1.0,true,"online"]', "[true]", "[]", "{}", "nope",
    '[1,"run"]', '[1,"ladder","KG","AS1","t",true,"online"]',
    '[1,"run","KG","AS1","x",1.0,"gone",null,null,null,null,null,false,false]'])
def test_a_stored_observation_of_other_rules_or_unreadable_is_stale(text: str) -> None:
    assert isinstance(observed.decode(text, "p"), observed.Stale)


def _config(scenario: dict[str, Any]) -> DetectionConfig:
    return DetectionConfig(networks={
        cc: NetworkRoles(incumbent=tuple(r.get("incumbent", ())),
                         mobile=tuple(r.get("mobile", ())))
        for cc, r in scenario.get("networks", {}).items()})


async def _events(path: Path, scenario: dict[str, Any], rewrite: str | None) -> list[Any]:
    """The events of detection catching up on the stored scenario, after ``rewrite`` ran
    on the file (None: as ingest stored it)."""
    if rewrite is not None:
        with sqlite3.connect(path) as db:
            assert db.execute(rewrite).rowcount > 0
        db.close()
    store = await SQLiteStore.open(str(path))
    try:
        end = scenarios.BASE + parse_duration(scenario["duration"])
        pipeline = Pipeline(store, _config(scenario), Calendar(),
                            DetectionMetrics(CollectorRegistry()), EventSnapshot(),
                            clock=lambda: scenarios.BASE)
        await pipeline.start()
        while True:
            await pipeline.run_once(end)
            if pipeline.caught_up:
                break
        events = await store.events(EventFilter(limit=10_000))
        return sorted(json.dumps(e, sort_keys=True) for e in events)
    finally:
        await store.close()


@pytest.mark.parametrize("name", ["national_block_tls_timeout", "mobile_shutdown",
                                  "sni_throttle", "tls_mitm_known_issuer"])
async def test_detection_from_stored_observations_and_from_bodies_gives_the_same_events(
        name: str, tmp_path: Path) -> None:
    scenario = scenarios.load(name)
    arrivals = scenarios.expand(scenario)
    paths = [tmp_path / f"{i}.sqlite" for i in range(3)]
    for path in paths:
        store = await SQLiteStore.open(str(path))
        try:
            await scenarios.store_arrivals(store, arrivals)
        finally:
            await store.close()
    stored = await _events(paths[0], scenario, None)
    from_bodies = await _events(paths[1], scenario, "UPDATE measurements SET observation = NULL")
    older_rules = await _events(
        paths[2], scenario,
        "UPDATE measurements SET observation = '[0' || substr(observation, 3)")
    assert stored  # the scenario has events to compare
    assert from_bodies == stored
    assert older_rules == stored
