"""All-target collapse on synthetic bins."""

from __future__ import annotations

from collector.detect.collapse import CollapseBin, CollapseSeries, probe_collapsed, step
from collector.detect.model import LIKELY, NONE, SUSPECTED
from collector.detect.params import CollapseParams, TierParams

P, TIERS = CollapseParams(), TierParams()
T0 = 1_700_000_000.0
PROBES = tuple(f"p{i}" for i in range(6))


def bin_(k: int, collapsed: tuple[str, ...], offline: int = 0) -> CollapseBin:
    return CollapseBin(T0 + 300 * k, T0 + 300 * (k + 1), PROBES, collapsed, offline)


def test_probe_collapse_rule() -> None:
    assert probe_collapsed(10, 8, False, P)
    assert not probe_collapsed(10, 7, False, P)
    assert not probe_collapsed(4, 4, False, P)  # too few targets tried to say
    assert probe_collapsed(0, 0, True, P)  # its ladder said offline


def test_a_network_collapsing_is_likely_on_the_second_bin_and_recovers_with_hysteresis() -> None:
    series = CollapseSeries()
    assert step(series, bin_(0, ()), "KZ", "AS1", 6, P, TIERS).level == NONE
    first = step(series, bin_(1, PROBES[:4], offline=4), "KZ", "AS1", 6, P, TIERS)
    assert first.level == SUSPECTED and first.onset == T0 + 300
    second = step(series, bin_(2, PROBES[:5]), "KZ", "AS1", 6, P, TIERS)
    assert second.level == LIKELY and second.probes == PROBES[:5]
    assert step(series, bin_(3, ()), "KZ", "AS1", 6, P, TIERS).recovered_at is None
    done = step(series, bin_(4, ()), "KZ", "AS1", 6, P, TIERS)
    assert done.level == NONE and done.recovered_at == T0 + 900


def test_one_broken_probe_is_not_a_collapse() -> None:
    series = CollapseSeries()
    for k in range(10):
        assert step(series, bin_(k, ("p0",)), "KZ", "AS1", 6, P, TIERS).level == NONE


def test_a_minority_is_not_a_collapse() -> None:
    series = CollapseSeries()
    for k in range(5):
        assert step(series, bin_(k, PROBES[:2]), "KZ", "AS1", 6, P, TIERS).level == NONE
