"""The two-sample KS test against reference values (computed once with SciPy 1.17's
``ks_2samp(method="exact")`` and ``kstwobign.sf``; SciPy is not a dependency)."""

from __future__ import annotations

import math

import pytest

from probe.nettests.throttling.ks import EXACT_LIMIT, kolmogorov_sf, ks_2samp


@pytest.mark.parametrize(
    ("a", "b", "statistic", "pvalue"),
    [
        ([1, 2, 3, 4, 5], [6, 7, 8, 9, 10], 1.0, 0.007936507936507936),
        ([1, 2, 3], [4, 5, 6], 1.0, 0.1),
        ([1, 3, 5, 7, 9], [2, 4, 6, 8, 10], 0.2, 1.0),
        ([0.1, 0.5, 0.9, 1.3], [0.2, 0.25, 2.0, 2.5, 3.0, 3.5], 2 / 3, 0.18095238095238098),
        ([5.0], [1.0, 2.0, 3.0], 1.0, 0.5),
        ([1, 2, 3, 4, 5, 6, 7, 8], [4.5, 5.5, 6.5, 7.5, 8.5, 9.5, 10.5, 11.5], 0.5,
         0.2826728826728826),
        # A throttled side (about 120 kbit/s) against a fast one: complete separation.
        ([120.0, 118.0, 125.0, 122.0, 119.0, 121.0, 124.0, 117.0, 123.0, 126.0],
         [9000.0, 9500.0, 8800.0, 9100.0], 1.0, 0.0019980019980019984),
    ],
)
def test_exact_matches_reference(a: list[float], b: list[float], statistic: float,
                                 pvalue: float) -> None:
    result = ks_2samp(a, b)
    assert result.method == "exact"
    assert result.statistic == pytest.approx(statistic, abs=1e-12)
    assert result.pvalue == pytest.approx(pvalue, rel=1e-9)


def test_statistic_and_pvalue_are_symmetric() -> None:
    a, b = [0.1, 0.5, 0.9, 1.3], [0.2, 0.25, 2.0, 2.5, 3.0, 3.5]
    assert ks_2samp(a, b) == ks_2samp(b, a)


def test_ties_across_samples_are_handled() -> None:
    # Identical samples: D = 0 and p = 1, even with every value tied across the two sides.
    result = ks_2samp([1, 1, 2, 2], [1, 1, 2, 2])
    assert (result.statistic, result.pvalue) == (0.0, 1.0)


@pytest.mark.parametrize(
    ("x", "expected"),
    [(0.3, 0.9999906941986655), (0.5, 0.9639452436648751), (1.0, 0.26999967167735456),
     (1.36, 0.049485876755377876), (1.63, 0.009846364888486529),
     (2.0, 0.0006709252557796953)],
)
def test_kolmogorov_distribution(x: float, expected: float) -> None:
    assert kolmogorov_sf(x) == pytest.approx(expected, rel=1e-9)


def test_large_samples_use_the_asymptotic_distribution() -> None:
    n = m = int(math.sqrt(EXACT_LIMIT)) + 1
    a = [float(i) for i in range(n)]
    b = [i + 0.5 * n for i in range(m)]  # shifted by half the range: D = 0.5
    result = ks_2samp(a, b)
    assert result.method == "asymptotic"
    assert result.statistic == pytest.approx(0.5, abs=1 / n)
    assert result.pvalue < 1e-20


def test_empty_sample_is_an_error() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        ks_2samp([], [1.0])
