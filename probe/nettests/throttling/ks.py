"""The two-sample Kolmogorov-Smirnov test, small and dependency-free.

Why our own: the probe runs on Raspberry-Pi-class hosts and must not pull in SciPy for one
statistic. Wehe (Li et al., SIGCOMM 2019) decides traffic differentiation with this test on the
throughput samples of two replays, and so does ``probe.nettests.throttling.differentiation``.

* The statistic ``D`` is the largest distance between the two empirical distribution functions,
  computed exactly as an integer ``max |i*m - j*n|`` over the merged sample (``D = that / nm``).
* The two-sided p-value ``P(D' >= D)`` under the null hypothesis is exact for small samples:
  the order in which the two samples interleave is a uniformly random lattice path from (0, 0)
  to (n, m), and ``D' < D`` exactly when the path stays inside the band ``|i*m - j*n| < D*nm``.
  The probability of staying inside is computed by dynamic programming over the grid with
  transition probabilities, so no factorials overflow.
* For large samples (``n*m`` above ``EXACT_LIMIT``) the p-value uses Kolmogorov's limiting
  distribution with Stephens' small-sample correction of the argument,
  ``Q((sqrt(ne) + 0.12 + 0.11/sqrt(ne)) * D)`` with ``ne = nm/(n+m)``.

The exact p-value assumes continuous data (no ties); with ties it is conservative.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

EXACT_LIMIT = 250_000  # n*m grid cells; at most about 0.1 s of pure Python on a slow core


@dataclass(frozen=True, slots=True)
class KSResult:
    """``statistic`` is D in [0, 1]; ``pvalue`` the two-sided p-value; ``method`` how."""

    statistic: float
    pvalue: float
    method: str


def _distance(a: Sequence[float], b: Sequence[float]) -> int:
    """``max |i*m - j*n|`` over the merged samples, where i, j count values <= x."""
    xs, ys = sorted(a), sorted(b)
    n, m = len(xs), len(ys)
    i = j = best = 0
    while i < n or j < m:
        value = min(xs[i] if i < n else math.inf, ys[j] if j < m else math.inf)
        while i < n and xs[i] == value:
            i += 1
        while j < m and ys[j] == value:
            j += 1
        best = max(best, abs(i * m - j * n))
    return best


def _exact_sf(n: int, m: int, distance: int) -> float:
    """P(D' >= D) for D = distance/(n*m), by the lattice-path band probability."""
    if distance <= 0:
        return 1.0
    # inside[j] is the probability that a uniform random path reaches (i, j) without
    # touching the band edge; steps right (take from sample a) happen with probability
    # (n - i) / (n - i + m - j).
    inside = [0.0] * (m + 1)
    inside[0] = 1.0
    for j in range(1, m + 1):
        ok = abs(0 * m - j * n) < distance
        inside[j] = inside[j - 1] * ((m - (j - 1)) / (n + m - (j - 1))) if ok else 0.0
    for i in range(1, n + 1):
        row = [0.0] * (m + 1)
        for j in range(m + 1):
            if abs(i * m - j * n) >= distance:
                continue
            remaining_prev_i = n - (i - 1) + m - j
            total = inside[j] * ((n - (i - 1)) / remaining_prev_i)
            if j > 0:
                remaining_prev_j = n - i + m - (j - 1)
                total += row[j - 1] * ((m - (j - 1)) / remaining_prev_j)
            row[j] = total
        inside = row
    return min(1.0, max(0.0, 1.0 - inside[m]))


def kolmogorov_sf(x: float) -> float:
    """Kolmogorov's limiting survival function ``Q(x) = 2 sum (-1)^(k-1) exp(-2 k^2 x^2)``."""
    if x < 0.18:
        return 1.0  # the series converges slowly here and the value is 1 to 1e-12
    total = 0.0
    for k in range(1, 101):
        term = math.exp(-2.0 * k * k * x * x)
        total += term if k % 2 else -term
        if term < 1e-16:
            break
    return min(1.0, max(0.0, 2.0 * total))


def ks_2samp(a: Sequence[float], b: Sequence[float]) -> KSResult:
    """Two-sided two-sample KS test of ``a`` against ``b``; raises ValueError if one is empty."""
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        raise ValueError("both samples need at least one value")
    distance = _distance(a, b)
    statistic = distance / (n * m)
    if n * m <= EXACT_LIMIT:
        return KSResult(statistic, _exact_sf(n, m, distance), "exact")
    root = math.sqrt(n * m / (n + m))
    return KSResult(statistic, kolmogorov_sf((root + 0.12 + 0.11 / root) * statistic),
                    "asymptotic")
