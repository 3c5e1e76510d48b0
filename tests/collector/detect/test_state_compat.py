"""Detection state saved by an earlier version of the engine still loads and goes on.

``data/engine_state_v2.json`` was written by the engine of state version 2 (every detector's
series saved as positional lists) in the middle of four incidents on a noisy fleet: a national
block, a targeted and a generalized slowdown, and a single-network shutdown, split 2 h 10 min
after the first began. It holds that engine's state at the split and the events that engine
published from the split to the end of the run. A collector upgraded across the change must
resume from such a row exactly where the old one stopped.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from bench.detection_eval import detection_config
from bench.fleet import HOUR, Fleet, Injection, Noise
from collector.detect.engine import Engine
from collector.detect.model import Event
from tests.collector.detect.test_engine import ALL, BASE, START

SAVED = Path(__file__).parent / "data" / "engine_state_v2.json"
TARGETS = BASE.target_urls()
SPEC = dataclasses.replace(BASE, days=1.0, targets=8, noise=Noise(), injections=(
    Injection("national_block:tcp_reset", "block", ALL, tuple(TARGETS[:4]), START,
              START + 3 * HOUR, mechanism="tcp_reset"),
    Injection("sni_throttle", "throttling", ("AS9198",), (TARGETS[5],), START + HOUR,
              START + 4 * HOUR, factor=15.0),
    Injection("generalized_slowdown", "throttling", ("AS64510",), (), START + 1.5 * HOUR,
              START + 4 * HOUR, factor=3.5),
    Injection("asn_shutdown", "shutdown", ("AS64501",), (), START + 2 * HOUR,
              START + 3 * HOUR),
))


def saved() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAVED.read_text())
    return data


def resume(state: dict[str, Any], split: float) -> dict[str, dict[str, Any]]:
    """The events published after ``split`` by an engine resumed from ``state``."""
    fleet = Fleet(SPEC)
    fleet.run(Engine(detection_config(SPEC)), until=split)  # the world up to the split
    engine = Engine.from_state(state, detection_config(SPEC))
    # Same parameters; only the block detector's state moved on (version 3 keeps each probe's
    # blocked streak and flips), and it is converted from the two rounds saved, not reset.
    assert [(c.detector, c.reason, c.action, dict(c.old), dict(c.new))
            for c in engine.state_changes] == [
        ("block", "version", "converted", {"version": 2}, {"version": 3})]
    after: dict[str, dict[str, Any]] = {}

    def keep(now: float, changed: list[Event]) -> None:
        after.update({e.id: e.to_json() for e in changed})

    fleet.run(engine, keep)
    return after


def test_a_state_saved_by_the_previous_version_resumes_where_it_stopped() -> None:
    data = saved()
    assert data["state"]["version"] == 2
    after = resume(data["state"], data["split"])
    assert after == data["events_after"]
    kinds = sorted((e["kind"], e["tier"]) for e in after.values())
    assert ("block", "confirmed") in kinds and ("shutdown", "likely") in kinds
    assert kinds.count(("throttling", "likely")) == 2


def test_a_resumed_old_state_is_saved_in_the_current_shape() -> None:
    data = saved()
    engine = Engine.from_state(data["state"], detection_config(SPEC))
    again = json.loads(json.dumps(engine.to_state()))
    restored = Engine.from_state(again, detection_config(SPEC))
    assert restored.state_changes == []
    assert json.loads(json.dumps(restored.to_state())) == again
