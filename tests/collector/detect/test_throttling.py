"""Targeted throttling and generalized slowdown on synthetic bins."""

from __future__ import annotations

from collector.detect.model import LIKELY, NONE, SUSPECTED
from collector.detect.params import ThrottleParams, TierParams
from collector.detect.throttling import (
    SlowdownBin,
    SlowdownSeries,
    ThrottleBin,
    ThrottleSeries,
    step,
    step_slowdown,
)

P, TIERS = ThrottleParams(), TierParams()
T0 = 1_700_000_000.0
PROBES = tuple(f"p{i}" for i in range(6))


def tbin(k: int, ratio: float, throttled: int = 0, generalized: bool = False) -> ThrottleBin:
    slow = PROBES if ratio >= P.warn_ratio or throttled else ()
    return ThrottleBin(T0 + 300 * k, T0 + 300 * (k + 1), runs=6, ratios=(ratio,) * 6,
                       throttled=throttled, slow_probes=slow,
                       mechanisms={"sni_throttle": throttled} if throttled else {},
                       generalized=generalized)


def test_targeted_throttling_onset_extreme_and_recovery() -> None:
    series = ThrottleSeries()
    assert step(series, tbin(0, 1.1), "KZ", "AS1", "t", 6, P, TIERS).level == NONE
    first = step(series, tbin(1, 12.0, throttled=3), "KZ", "AS1", "t", 6, P, TIERS)
    assert first.level == SUSPECTED
    second = step(series, tbin(2, 14.0), "KZ", "AS1", "t", 6, P, TIERS)
    assert second.level == LIKELY and second.onset == T0 + 300
    assert second.stats["extreme"] and second.mechanism == "sni_throttle"
    assert step(series, tbin(3, 1.0), "KZ", "AS1", "t", 6, P, TIERS).recovered_at is None
    assert step(series, tbin(4, 1.0), "KZ", "AS1", "t", 6, P, TIERS).recovered_at == T0 + 900


def test_moderate_slowdown_is_a_warning_not_extreme() -> None:
    series = ThrottleSeries()
    step(series, tbin(0, 4.0), "KZ", "AS1", "t", 6, P, TIERS)
    signal = step(series, tbin(1, 4.0), "KZ", "AS1", "t", 6, P, TIERS)
    assert signal.level == LIKELY and not signal.stats["extreme"]


def test_bins_where_everything_is_slow_are_not_targeted() -> None:
    series = ThrottleSeries()
    for k in range(5):
        assert step(series, tbin(k, 5.0, generalized=True), "KZ", "AS1", "t", 6, P,
                    TIERS).level == NONE


def test_slightly_slow_is_not_throttling() -> None:
    series = ThrottleSeries()
    for k in range(5):
        assert step(series, tbin(k, 2.0), "KZ", "AS1", "t", 6, P, TIERS).level == NONE


def sbin(k: int, slow: int, ratio: float = 3.0) -> SlowdownBin:
    ratios = {p: (ratio if i < slow else 1.0) for i, p in enumerate(PROBES)}
    return SlowdownBin(T0 + 300 * k, T0 + 300 * (k + 1), ratios)


def test_generalized_slowdown_needs_half_the_probes_for_two_bins() -> None:
    series = SlowdownSeries()
    assert step_slowdown(series, sbin(0, 2), "KZ", "AS1", 6, P, TIERS).level == NONE
    assert step_slowdown(series, sbin(1, 4), "KZ", "AS1", 6, P, TIERS).level == SUSPECTED
    likely = step_slowdown(series, sbin(2, 5), "KZ", "AS1", 6, P, TIERS)
    assert likely.level == LIKELY and likely.stats["class"] == "generalized"
    step_slowdown(series, sbin(3, 0), "KZ", "AS1", 6, P, TIERS)
    assert step_slowdown(series, sbin(4, 1), "KZ", "AS1", 6, P, TIERS).recovered_at == T0 + 900


def test_state_round_trips() -> None:
    series = ThrottleSeries()
    step(series, tbin(0, 12.0), "KZ", "AS1", "t", 6, P, TIERS)
    assert ThrottleSeries.from_state(series.to_state()) == series
    slow = SlowdownSeries()
    step_slowdown(slow, sbin(0, 5), "KZ", "AS1", 6, P, TIERS)
    assert SlowdownSeries.from_state(slow.to_state()) == slow


def one_probe_bin(k: int, probe: str, ratio: float, width: float = 60.0) -> ThrottleBin:
    """A 1-minute bin holding one probe's two runs (an hourly cadence in 1-minute bins)."""
    return ThrottleBin(T0 + width * k, T0 + width * (k + 1), runs=2, ratios=(ratio, ratio),
                       throttled=0, slow_probes=(probe,) if ratio >= P.warn_ratio else (),
                       mechanisms={}, generalized=False, probes=(probe,))


def test_bins_with_one_vantage_point_are_pooled_until_enough_probes_spoke() -> None:
    # Six probes measuring hourly, each in its own 1-minute bin, 10 minutes apart. Alone, a
    # bin is one probe's anecdote; pooled in pairs, the bins are judged.
    series = ThrottleSeries()
    levels = []
    for k, probe in enumerate(PROBES * 2):
        signal = step(series, one_probe_bin(10 * k, probe, 12.0), "KZ", "AS1", "t", 6, P,
                      TIERS)
        levels.append(signal.level)
    assert levels[0] == NONE and series.streak.hot_bins == 6
    assert LIKELY in levels and levels[-1] == LIKELY
    assert levels.index(LIKELY) == 3  # two pooled pairs: 2 hot bins, 8 runs, 4 slow probes
    # The state, pool included, survives a restart.
    step(series, one_probe_bin(200, "p0", 12.0), "KZ", "AS1", "t", 6, P, TIERS)
    assert series.pool is not None
    assert ThrottleSeries.from_state(series.to_state()) == series


def test_a_pool_older_than_the_cluster_window_is_dropped() -> None:
    series = ThrottleSeries()
    step(series, one_probe_bin(0, "p0", 12.0), "KZ", "AS1", "t", 6, P, TIERS)
    late = P.cluster_window // 60 + 5
    signal = step(series, one_probe_bin(int(late), "p1", 12.0), "KZ", "AS1", "t", 6, P, TIERS)
    assert signal.level == NONE and series.pool is not None and series.pool.probes == ("p1",)


def test_one_probe_alone_in_its_network_is_judged_on_its_own() -> None:
    series = ThrottleSeries()
    signal = step(series, one_probe_bin(0, "p0", 12.0), "KZ", "AS1", "t", 1, P, TIERS)
    assert series.pool is None and signal.level == SUSPECTED
