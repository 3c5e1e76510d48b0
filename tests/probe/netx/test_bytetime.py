"""Byte-time curve arithmetic on synthetic curves."""

from __future__ import annotations

import random

import pytest

from probe.netx import bytetime


def steady(rate_bps: float, seconds: float, step: float = 0.25, t0: float = 0.0,
           jitter: float = 0.0, seed: int = 1) -> list[bytetime.Sample]:
    """A cumulative curve at ``rate_bps`` sampled every ``step`` seconds, with optional
    multiplicative noise on each interval's bytes."""
    rng = random.Random(seed)
    out: list[bytetime.Sample] = [(t0, 0)]
    t, n = t0, 0.0
    while t < t0 + seconds - 1e-9:
        t += step
        n += rate_bps / 8 * step * (1 + rng.uniform(-jitter, jitter))
        out.append((round(t, 6), int(n)))
    return out


def test_since_rebases_at_the_request() -> None:
    samples = [(0.0, 0), (0.1, 4000), (0.2, 4000), (0.5, 20000), (0.9, 36000)]
    assert bytetime.since(samples, 0.2, bytetime.bytes_at(samples, 0.2)) == [
        (0.2, 0), (0.2, 0), (0.5, 16000), (0.9, 32000)]
    assert bytetime.bytes_at(samples, 0.05) == 0
    assert bytetime.bytes_at(samples, 10.0) == 36000


def test_interval_rates_of_a_steady_curve() -> None:
    rates = bytetime.interval_rates(steady(128_000, 2.0))
    assert len(rates) == 8
    assert all(r == pytest.approx(128_000, rel=0.01) for r in rates)


def test_short_gaps_are_merged_and_a_fast_transfer_keeps_one_rate() -> None:
    curve = [(0.0, 0), (0.02, 10_000), (0.05, 20_000), (0.12, 50_000)]
    # 0.12 s in all: the gaps shorter than 0.1 s merge into one rate over 0.12 s.
    assert bytetime.interval_rates(curve) == [pytest.approx(8 * 50_000 / 0.12)]
    fast = [(1.0, 0), (1.004, 524_288)]
    assert bytetime.interval_rates(fast) == [pytest.approx(8 * 524_288 / 0.004)]


def test_goodput_over_the_window() -> None:
    curve = [(0.0, 0), (0.5, 262_144), (1.0, 524_288), (2.0, 1_048_576)]
    assert bytetime.goodput(curve, window=524_288) == pytest.approx(8 * 524_288 / 1.0)
    assert bytetime.goodput(curve, window=262_144) == pytest.approx(8 * 262_144 / 0.5)
    # A transfer cut short (a timeout while bytes arrived) counts what it got.
    cut = [(0.0, 0), (1.0, 16_000), (3.0, 48_000)]
    assert bytetime.goodput(cut, window=524_288) == pytest.approx(128_000)
    assert bytetime.goodput([(0.0, 0)]) is None


def test_plateau_of_a_policer() -> None:
    curve = steady(128_000, 3.0, jitter=0.1)
    found = bytetime.plateau(bytetime.interval_rates(curve, bytetime.PLATEAU_WINDOW))
    assert found.found
    assert found.rate_bps == pytest.approx(128_000, rel=0.1)
    assert found.cv is not None and found.cv < 0.2


def test_a_policer_plateau_survives_one_stall() -> None:
    rates = [400_000, 130_000, 126_000, 0.0, 131_000, 128_000, 127_000, 129_000]
    result = bytetime.plateau(rates)
    assert result.found and result.rate_bps == 128_000


def test_congestion_is_not_a_plateau() -> None:
    rng = random.Random(5)
    rates = [rng.choice([80_000, 300_000, 700_000, 150_000, 900_000]) for _ in range(12)]
    assert not bytetime.plateau(rates).found


def test_a_fast_steady_flow_is_not_a_low_plateau() -> None:
    rates = [20e6] * 8
    result = bytetime.plateau(rates)
    assert result.cv == 0.0 and not result.found


def test_too_few_intervals_say_nothing() -> None:
    result = bytetime.plateau([128_000, 128_000, 128_000])
    assert not result.found and result.intervals == 2


def test_stalls_count_spans_without_progress() -> None:
    curve = [(0.0, 0), (0.3, 1000), (0.6, 1000), (0.9, 1000), (1.4, 1000), (1.5, 2000),
             (1.8, 3000), (3.0, 3000)]
    assert bytetime.stalls(curve, min_gap=1.0) == 2
    assert bytetime.stalls(steady(128_000, 2.0)) == 0


def test_cv_helpers() -> None:
    assert bytetime.coefficient_of_variation([1.0]) is None
    assert bytetime.coefficient_of_variation([2.0, 2.0]) == 0.0
    assert bytetime.robust_cv([1.0, 2.0]) is None
    assert bytetime.robust_cv([0.0, 0.0, 0.0]) is None
