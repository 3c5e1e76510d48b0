"""The outside-in monitor's history saved and read back: the verdicts go on where they were,
each group keeps at most ``history_points`` values, and a damaged document is refused."""

from __future__ import annotations

import ipaddress
import json

import pytest

from collector.detect.outside import Level, OutsideParams
from collector.outside.belief import BlockState
from collector.outside.blocks import Block
from collector.outside.prober import BlockResult, RoundReport
from collector.outside.signal import STATE_NAME, OutsideMonitor

PARAMS = OutsideParams(min_baseline=2, min_history=3)


def report(t: float, up: int, total: int = 10) -> RoundReport:
    results = tuple(
        BlockResult(block=Block("KZ", "AS64500", ipaddress.IPv4Network((0xC6120000 + 256 * i, 24))),
                    state=BlockState.UP if i < up else BlockState.DOWN, belief_up=0.5,
                    availability=1.0, responsive=4, probes=1)
        for i in range(total))
    return RoundReport(started=t, seconds=1.0, sent=total, answered=up, results=results)


def test_a_restored_monitor_judges_at_once_and_a_fresh_one_does_not() -> None:
    before = OutsideMonitor(PARAMS, history_points=5)
    for n in range(7):
        before.observe(report(float(n), 10))
    text = before.to_json()
    restored = OutsideMonitor(PARAMS, history_points=5)
    restored.load_json(text)
    fresh = OutsideMonitor(PARAMS, history_points=5)
    cut = report(7.0, 0)
    by_group = {(v.group.country, v.group.network): v.verdict for v in restored.observe(cut)}
    assert by_group[("KZ", "AS64500")].level is Level.CRITICAL
    assert by_group[("KZ", "")].baseline == 10
    assert {v.verdict.level for v in fresh.observe(cut)} == {Level.INSUFFICIENT}
    # Bounded: five values per group kept, whatever the document held.
    series = json.loads(text)["series"]
    assert set(series) == {"KZ|", "KZ|AS64500"} and len(series["KZ|AS64500"]) == 5
    small = OutsideMonitor(PARAMS, history_points=2)
    small.load_json(text)
    assert json.loads(small.to_json())["series"]["KZ|AS64500"] == [10.0, 10.0]
    small.load_json(None)  # no saved document: the history stays
    assert json.loads(small.to_json())["series"]["KZ|AS64500"] == [10.0, 10.0]


@pytest.mark.parametrize("text", [
    "[]", '{"version": 2, "series": {}}', '{"version": 1}',
    '{"version": 1, "series": {"KZ-AS1": [1]}}', '{"version": 1, "series": {"KZ|AS1": 3}}',
    '{"version": 1, "series": {"KZ|AS1": [1, "2"]}}', '{"version": 1, "series": {"KZ|AS1": [-1]}}',
    '{"version": 1, "series": {"KZ|AS1": [NaN]}}', '{"version": 1, "series": {"KZ|AS1": [true]}}',
    "{not json"])
def test_a_damaged_document_is_refused_and_the_history_kept(text: str) -> None:
    monitor = OutsideMonitor(PARAMS)
    monitor.observe(report(0.0, 10))
    kept = monitor.to_json()
    reason = STATE_NAME if text != "{not json" else "Expecting property name"
    with pytest.raises(ValueError, match=reason):
        monitor.load_json(text)
    assert monitor.to_json() == kept


def test_a_history_saved_at_ten_minute_rounds_loads_into_a_week_of_five_minute_rounds() -> None:
    # A collector at 10-minute rounds kept 1,008 values per group (7 days); at 5-minute rounds
    # the week holds 2,016: all of them are kept, and new rounds add to them.
    old = OutsideMonitor(PARAMS, history_points=7 * 24 * 6)
    for n in range(7 * 24 * 6 + 10):
        old.observe(report(float(n), 10))
    new = OutsideMonitor(PARAMS, history_points=7 * 24 * 12)
    new.load_json(old.to_json())
    assert len(json.loads(new.to_json())["series"]["KZ|AS64500"]) == 1008
    [_, network] = new.observe(report(9e3, 10))
    assert network.verdict.level is Level.NONE and network.verdict.baseline == 10
    assert len(json.loads(new.to_json())["series"]["KZ|AS64500"]) == 1009


def test_a_history_learned_on_more_blocks_than_are_judged_now_starts_anew() -> None:
    # Saved when every block was counted (300 up); now 10 watched blocks are judged, all up:
    # compared with the old median that would be critical, and inpainted so for ever.
    old = OutsideMonitor(PARAMS)
    for n in range(10):
        old.observe(report(float(n), 300, total=300))
    new = OutsideMonitor(PARAMS)
    new.load_json(old.to_json())
    levels = [{v.verdict.level for v in new.observe(report(10.0 + n, 10))} for n in range(5)]
    assert levels == [{Level.INSUFFICIENT}] * 3 + [{Level.NONE}] * 2
    # A cut keeps its blocks judged (down): the history stays and the cut is seen.
    [_, network] = new.observe(report(20.0, 0))
    assert network.verdict.level is Level.CRITICAL and network.verdict.baseline == 10


def test_only_groups_whose_watch_sets_are_settled_are_judged() -> None:
    monitor = OutsideMonitor(PARAMS)
    assert monitor.observe(report(0.0, 4), ready=set()) == []
    [network] = monitor.observe(report(1.0, 10), ready={("KZ", "AS64500")})
    assert network.group.network == "AS64500"
    assert {v.group.network for v in monitor.observe(report(2.0, 10),
                                                     ready={("KZ", "AS64500"), ("KZ", "")})} \
        == {"AS64500", ""}
    # The growth while the set filled (4 blocks up) never reached the history.
    assert json.loads(monitor.to_json())["series"]["KZ|AS64500"] == [10.0, 10.0]
