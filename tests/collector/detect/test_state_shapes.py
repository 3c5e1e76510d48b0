"""Saved detection state carries the shape it was built with; a change is converted or reset,
and said so, never silent."""

from __future__ import annotations

import dataclasses
import json

import pytest

from bench.detection_eval import detection_config
from bench.fleet import HOUR, Fleet, Injection
from collector.detect import state_shapes
from collector.detect.engine import Engine
from collector.detect.model import Event
from collector.detect.params import BlockParams, DetectionConfig
from tests.collector.detect.test_engine import BASE, START

BLOCK = Injection("asn_block:dns_nxdomain", "block", ("AS64501",),
                  tuple(BASE.target_urls()[:3]), START, START + 2 * HOUR,
                  mechanism="dns_nxdomain")
SPEC = dataclasses.replace(BASE, injections=(BLOCK,))


def with_bin(config: DetectionConfig, width: float) -> DetectionConfig:
    return dataclasses.replace(config, block=dataclasses.replace(config.block, bin=width))


def test_an_unchanged_config_changes_nothing() -> None:
    config = DetectionConfig()
    assert state_shapes.compare(state_shapes.shapes(config), config) == []
    saved = json.loads(json.dumps(state_shapes.shapes(config)))
    assert state_shapes.compare(saved, config) == []


def test_a_new_bin_converts_bins_and_blocks_and_resets_what_counts_bins() -> None:
    old = DetectionConfig()
    changes = {c.detector: c for c in state_shapes.compare(state_shapes.shapes(old),
                                                           with_bin(old, 900.0))}
    assert set(changes) == {"bins", "block", "collapse", "throttle", "slowdown"}
    assert changes["bins"].action == "converted" and changes["bins"].reason == "params"
    assert changes["block"].action == "converted"
    assert changes["collapse"].action == changes["throttle"].action == "reset"
    assert changes["bins"].describe() == \
        "detection state of bins converted: params changed (bin 300.0 -> 900.0)"
    assert changes["block"].describe() == \
        "detection state of block converted: params changed (block.bin 300.0 -> 900.0)"


def test_a_new_threshold_resets_only_its_detector() -> None:
    old = DetectionConfig()
    new = dataclasses.replace(old, throttle=dataclasses.replace(old.throttle, warn_ratio=4.0))
    [change] = state_shapes.compare(state_shapes.shapes(old), new)
    assert (change.detector, change.action) == ("throttle", "reset")
    assert change.describe().endswith("(throttle.warn_ratio 3.0 -> 4.0)")


def test_a_new_code_version_resets_and_an_unversioned_state_is_not_trusted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = DetectionConfig()
    saved = state_shapes.shapes(config)
    monkeypatch.setitem(state_shapes.VERSIONS, "collapse", 99)
    [change] = state_shapes.compare(saved, config)
    assert (change.detector, change.reason, change.action) == ("collapse", "version", "reset")
    assert change.old == {"version": 1} and change.new == {"version": 99}
    monkeypatch.undo()
    unversioned = {c.detector: c for c in state_shapes.compare(None, config)}
    assert set(unversioned) == set(state_shapes.VERSIONS)
    assert all(c.action == "reset" for c in unversioned.values())
    assert unversioned["block"].reason == "version"  # blocks count rounds since version 2


def run_split(first: DetectionConfig, second: DetectionConfig, split: float,
              ) -> tuple[dict[str, Event], Engine]:
    engine = Engine(first)
    events: dict[str, Event] = {}
    fleet = Fleet(SPEC)
    fleet.run(engine, lambda now, changed: events.update({e.id: e for e in changed}),
              until=split)
    saved = json.loads(json.dumps(engine.to_state()))
    restored = Engine.from_state(saved, second)
    fleet.run(restored, lambda now, changed: events.update({e.id: e for e in changed}))
    return events, restored


@pytest.mark.parametrize("new_bin", [60.0, 900.0], ids=["smaller", "larger"])
def test_detection_goes_on_after_the_bin_changes_mid_incident(new_bin: float) -> None:
    config = detection_config(SPEC)
    assert config.block.bin == 300.0
    events, engine = run_split(config, with_bin(config, new_bin), START + HOUR)
    assert {c.detector: c.action for c in engine.state_changes}["bins"] == "converted"
    # Before conversion a larger bin made every observation "late" (the saved bin index
    # was in the old units) and detection stopped.
    assert engine.late == 0
    [event] = events.values()
    assert (event.kind, event.tier, event.status) == ("block", "likely", "closed")
    assert event.targets == BLOCK.targets and event.asns == ("AS64501",)
    assert BLOCK.end <= event.end is not None and event.end <= BLOCK.end + 3 * BASE.cycle


def test_a_block_starting_after_the_change_is_seen_in_the_new_bins() -> None:
    config = detection_config(SPEC)
    events, engine = run_split(config, with_bin(config, 900.0), START - HOUR)
    assert engine.late == 0
    [event] = events.values()
    assert event.tier == "likely" and abs(event.start - START) <= BASE.cycle


def test_pending_bins_are_regathered_at_the_new_width() -> None:
    config = detection_config(SPEC)
    engine = Engine(config)
    Fleet(SPEC).run(engine, until=START + 1234.0)
    assert engine.pending and engine.last_settled is not None
    runs = sorted((r.probe_id, r.target, r.t) for b in engine.pending.values()
                  for rs in b["runs"].values() for r in rs)
    settled_until = (engine.last_settled + 1) * 300.0
    restored = Engine.from_state(json.loads(json.dumps(engine.to_state())),
                                 with_bin(config, 900.0))
    assert sorted((r.probe_id, r.target, r.t) for b in restored.pending.values()
                  for rs in b["runs"].values() for r in rs) == runs
    assert restored.last_settled is not None
    assert (restored.last_settled + 1) * 900.0 <= settled_until
    assert all(index > restored.last_settled for index in restored.pending)
    assert all(index * 900.0 <= r.t < (index + 1) * 900.0 for index, b in
               restored.pending.items() for rs in b["runs"].values() for r in rs)
    assert sum(b.tried for bin_ in restored.pending.values()
               for b in bin_["probes"].values()) == sum(
        b.tried for bin_ in engine.pending.values() for b in bin_["probes"].values()) > 0


def test_bins_were_the_cause_of_late_observations_before_conversion() -> None:
    """The failure the conversion fixes, shown on the same data: resuming the old bin index
    under a larger bin without re-binning loses everything after the restart."""
    config = detection_config(SPEC)
    engine = Engine(config)
    fleet = Fleet(SPEC)
    fleet.run(engine, until=START)
    state = json.loads(json.dumps(engine.to_state()))
    state["shapes"]["bins"]["params"]["bin"] = 900.0  # as if saved under the new bin
    state["shapes"]["block"]["params"]["block"]["bin"] = 900.0
    restored = Engine.from_state(state, dataclasses.replace(
        config, block=dataclasses.replace(BlockParams(), bin=900.0)))
    fleet.run(restored, until=START + 600.0)
    assert restored.late > 100



def test_a_detector_registered_since_the_save_starts_empty_without_a_reset() -> None:
    config = DetectionConfig()
    saved = state_shapes.shapes(config)
    assert "outside" in saved  # registered after state version 2
    before_it = {k: v for k, v in saved.items() if k != "outside"}
    assert state_shapes.compare(before_it, config) == []
    damaged = {k: v for k, v in saved.items() if k != "collapse"}
    [change] = state_shapes.compare(damaged, config)
    assert (change.detector, change.action) == ("collapse", "reset")
