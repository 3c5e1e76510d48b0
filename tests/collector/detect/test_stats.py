"""Small-count statistics against brute force and published values."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.detect.stats import median, poisson_binomial_tail, wilson_lower


@pytest.mark.parametrize(("successes", "n", "expected"), [
    (3, 3, 0.4385), (4, 4, 0.5101), (6, 6, 0.6097), (5, 10, 0.2366), (0, 10, 0.0),
    (1, 1, 0.2065),
])
def test_wilson_lower_known_values(successes: int, n: int, expected: float) -> None:
    assert wilson_lower(successes, n) == pytest.approx(expected, abs=1e-4)


def test_wilson_needs_four_unanimous_runs_for_a_majority() -> None:
    # Why likely needs two rounds: three unanimous runs cannot prove a blocked majority.
    assert wilson_lower(3, 3) < 0.5 <= wilson_lower(4, 4)
    assert wilson_lower(0, 0) == 0.0
    with pytest.raises(ValueError):
        wilson_lower(4, 3)


def _brute_tail(probabilities: list[float], k: int) -> float:
    total = 0.0
    for outcome in itertools.product((0, 1), repeat=len(probabilities)):
        if sum(outcome) >= k:
            total += math.prod(p if o else 1 - p for p, o in zip(probabilities, outcome,
                                                                  strict=True))
    return total


@given(st.lists(st.floats(0.0, 1.0), min_size=0, max_size=8), st.integers(0, 9))
def test_poisson_binomial_tail_matches_enumeration(probabilities: list[float], k: int) -> None:
    assert poisson_binomial_tail(probabilities, k) == pytest.approx(
        _brute_tail(probabilities, k), abs=1e-12)


def test_binomial_example_from_the_reference() -> None:
    # detection.md §6.2: 4 of 6 probes silent at p = 0.05 gives about 9e-5.
    assert poisson_binomial_tail([0.05] * 6, 4) == pytest.approx(8.64e-5, rel=0.01)


def test_median() -> None:
    assert median([]) is None
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
