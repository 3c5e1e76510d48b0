"""Wehe's rule on synthetic throughput samples: each branch of the decision."""

from __future__ import annotations

import random

import pytest

from probe.nettests.throttling.differentiation import decide, normalized_difference


def samples(mean: float, n: int, spread: float = 0.05, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    return [mean * (1 + rng.uniform(-spread, spread)) for _ in range(n)]


def test_area_sign_and_scale() -> None:
    assert normalized_difference([100.0], [400.0]) == pytest.approx(0.75)
    assert normalized_difference([400.0], [100.0]) == pytest.approx(-0.75)
    assert normalized_difference([0.0], [0.0]) is None
    assert normalized_difference([], [1.0]) is None


@pytest.mark.parametrize(
    ("original", "control", "verdict", "slower"),
    [
        # The target SNI held at 128 kbit/s while the innocuous SNI runs at 20 Mbit/s.
        (samples(128e3, 24), samples(20e6, 4, seed=2), "differentiation", "original"),
        # The reverse is also differentiation; the sign says which side was slower.
        (samples(20e6, 4), samples(128e3, 24, seed=2), "differentiation", "control"),
        # Same rate on both sides: no differentiation.
        (samples(600e3, 25), samples(600e3, 25, seed=3), "none", None),
        # A big difference with too few samples to be significant: inconclusive.
        (samples(128e3, 2), samples(20e6, 2, seed=2), "inconclusive", "original"),
        # Significant but small (20% slower): inconclusive, not "none".
        (samples(800e3, 30, 0.02), samples(1e6, 30, 0.02, seed=4), "inconclusive",
         "original"),
    ],
)
def test_wehe_rule(original: list[float], control: list[float], verdict: str,
                   slower: str | None) -> None:
    result = decide(original, control)
    assert result.verdict == verdict, result
    if slower is not None:
        assert result.slower == slower
    else:
        assert abs(result.area or 1.0) < 0.05


def test_zero_samples_are_left_out_of_the_ks_test() -> None:
    stalled = samples(128e3, 20) + [0.0] * 10
    result = decide(stalled, samples(20e6, 4, seed=2))
    assert result.original_samples == 20
    assert result.verdict == "differentiation"


def test_missing_side_is_inconclusive() -> None:
    result = decide([], samples(1e6, 5))
    assert result.verdict == "inconclusive"
    assert result.ks_pvalue is None
    assert result.as_record()["verdict"] == "inconclusive"
