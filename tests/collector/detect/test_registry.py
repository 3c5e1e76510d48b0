"""The detector registry, the tracker's corroboration hook, and the outside-in detector that was
added through them (the README's "How to add a detector" walk-through)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from collector.detect.detector import Detector, SettledBin
from collector.detect.engine import Engine
from collector.detect.model import CONFIRMED, LIKELY, NONE, SUSPECTED, Run, Signal
from collector.detect.outside_in import OutsideDetector, OutsideReading
from collector.detect.params import DetectionConfig
from collector.detect.registry import DETECTORS
from collector.detect.tracker import TIER_RULES, Candidate, Context, Corroboration, Tracker

T0 = 1_700_000_000.0
CONFIG = DetectionConfig()
CONTEXT = Context(roles={}, active_asns={"KZ": 3}, windows={})


def silence(asn: str, level: int, at: float, onset: float = T0) -> Signal:
    return Signal(kind="shutdown", detector="silence", cc="KZ", asn=asn, target=None,
                  level=level, at=at, onset=onset if level else None, asns=(asn,),
                  probes=(f"{asn}-p1", f"{asn}-p2"))


def dark_from_outside(detector: OutsideDetector, asn: str, until: float) -> None:
    """Twelve rounds of 40 blocks up, then rounds of 10 up until ``until``."""
    t = T0 - 12 * 600.0
    while t <= until:
        assert detector.observe(OutsideReading("KZ", asn, t, 40 if t < T0 else 10))
        t += 600.0


def test_every_registered_detector_has_a_unique_name_and_saves_a_versioned_dict() -> None:
    names = [d.name for d in DETECTORS]
    assert len(set(names)) == len(names)
    engine = Engine(CONFIG)
    state = json.loads(json.dumps(engine.to_state()))
    assert set(state["detectors"]) == set(names)
    assert all(state["detectors"][d.name]["version"] == d.state_version for d in DETECTORS)


def test_the_engine_runs_a_detector_it_does_not_know_by_name() -> None:
    seen: list[tuple[int, int]] = []

    class Counting(Detector):
        name = "counting"

        def judge_bin(self, b: SettledBin) -> list[Signal]:
            seen.append((b.index, sum(len(runs) for runs in b.runs.values())))
            return []

    engine = Engine(CONFIG, detectors=(*DETECTORS, Counting))
    for i in range(3):
        engine.add(Run(f"p{i}", "KZ", "AS9198", "https://a.example/", T0 + 10 * i, "ok"))
    engine.evaluate(T0 + 3600)
    assert seen == [(int(T0 // CONFIG.block.bin), 3)]
    with pytest.raises(TypeError, match="no detector takes"):
        engine.add(object())


def test_a_corroboration_raises_and_lowers_and_the_tier_rule_comes_last() -> None:
    def vouch(candidate: Candidate, level: int) -> int:
        return LIKELY if candidate.kind == "shutdown" and level == SUSPECTED else level

    def doubt(candidate: Candidate, level: int) -> int:
        return NONE if any(m.asn == "AS64599" for m in candidate.members) else level

    rules: Sequence[Corroboration] = (vouch, doubt, *TIER_RULES)
    tracker = Tracker(CONFIG, rules)
    [event] = tracker.apply([silence("AS9198", SUSPECTED, T0)], T0, CONTEXT)
    assert event.tier == "likely"
    # The tier rule after it counts members likely by their own detector's rules: two
    # corroborated suspected networks are likely, not confirmed.
    [event] = tracker.apply([silence("AS64501", SUSPECTED, T0 + 60)], T0 + 60, CONTEXT)
    assert event.tier == "likely"
    [event] = tracker.apply([silence("AS9198", LIKELY, T0 + 120),
                             silence("AS64501", LIKELY, T0 + 120)], T0 + 120, CONTEXT)
    assert event.tier == "confirmed"
    # A doubted candidate is held back: published at the lowest tier, never raised.
    [held] = Tracker(CONFIG, rules).apply([silence("AS64599", LIKELY, T0)], T0, CONTEXT)
    assert held.tier == "suspected"
    # Without the rules, the same signal stays suspected: the rules did the raising.
    [plain] = Tracker(CONFIG).apply([silence("AS9198", SUSPECTED, T0)], T0, CONTEXT)
    assert plain.tier == "suspected"


def test_outside_in_darkness_makes_a_suspected_silence_likely() -> None:
    engine = Engine(CONFIG)
    outside = engine.detector("outside")
    assert isinstance(outside, OutsideDetector)
    dark_from_outside(outside, "AS9198", T0 + 600)
    assert outside.networks["KZ|AS9198"].level == "critical"
    [event] = engine.tracker.apply([silence("AS9198", SUSPECTED, T0 + 600)], T0 + 600,
                                   CONTEXT)
    assert event.tier == "likely"
    # Another network, seen normal from outside, gets no help.
    [other] = engine.tracker.apply([silence("AS64501", SUSPECTED, T0 + 3 * 3600,
                                            onset=T0 + 3 * 3600)], T0 + 3 * 3600, CONTEXT)
    assert other.tier == "suspected"


def test_outside_in_darkness_long_before_the_silence_corroborates_nothing() -> None:
    engine = Engine(CONFIG)
    outside = engine.detector("outside")
    assert isinstance(outside, OutsideDetector)
    dark_from_outside(outside, "AS9198", T0 + 600)
    late = T0 + 600 + CONFIG.silence.join_window + 600
    [event] = engine.tracker.apply([silence("AS9198", SUSPECTED, late, onset=late)], late,
                                   CONTEXT)
    assert event.tier == "suspected"


def test_outside_in_readings_reach_the_detector_through_the_engine_and_survive_a_save() -> None:
    engine = Engine(CONFIG)
    t = T0
    for i in range(8):
        engine.add(OutsideReading("KZ", "AS9198", t + 600 * i, 40 if i < 7 else 15))
    outside = engine.detector("outside")
    assert isinstance(outside, OutsideDetector)
    view = outside.networks["KZ|AS9198"]
    assert view.level == "critical" and view.at == t + 4200
    assert view.history[-1] == 40.0  # the outage is inpainted: it never trains the baseline
    saved = json.loads(json.dumps(engine.to_state()))
    restored = Engine.from_state(saved, CONFIG)
    assert restored.state_changes == []
    again = restored.detector("outside")
    assert isinstance(again, OutsideDetector) and again.networks == outside.networks


def test_confirmed_still_needs_likely_members() -> None:
    tracker = Tracker(CONFIG)
    signals = [silence("AS9198", SUSPECTED, T0), silence("AS64501", SUSPECTED, T0)]
    [event] = tracker.apply(signals, T0, CONTEXT)
    assert event.tier == "suspected"
    [event] = tracker.apply([silence("AS9198", LIKELY, T0 + 60),
                             silence("AS64501", LIKELY, T0 + 60)], T0 + 60, CONTEXT)
    assert event.tier == TIER_NAMES[CONFIRMED]


TIER_NAMES = {SUSPECTED: "suspected", LIKELY: "likely", CONFIRMED: "confirmed"}
