"""Small-count statistics the detectors share: Wilson bounds, Poisson-binomial tails, medians.

Kuzot watches a handful of networks with tens of volunteer probes, so every test here is exact
or conservative at small n (detection.md §6: "statistics must work with small counts").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def wilson_lower(successes: int, n: int, z: float = 1.96) -> float:
    """Lower bound of the Wilson score interval for a proportion (Wilson 1927).

    With ``z = 1.96`` this is the 95% two-sided bound used for "blocked share" (detection.md
    §6.3). It is 0 for ``n == 0`` and stays honest at small n: 3 blocked of 3 gives 0.44, so three
    runs alone cannot claim a majority; 6 of 6 gives 0.61.
    """
    if n <= 0:
        return 0.0
    if not 0 <= successes <= n:
        raise ValueError("successes must be within [0, n]")
    p = successes / n
    z2 = z * z
    centre = p + z2 / (2 * n)
    margin = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, (centre - margin) / (1 + z2 / n))


def poisson_binomial_tail(probabilities: Sequence[float], k: int) -> float:
    """P(X >= k) where X is a sum of independent Bernoulli(p_i): exact, O(n * k).

    The binomial tail generalised to a different p for each trial, which is what "each probe's
    own miss rate" needs (detection.md §6.2 uses the binomial with one p).
    """
    if k <= 0:
        return 1.0
    if k > len(probabilities):
        return 0.0
    # dist[j] = P(exactly j successes so far) for j < k; mass reaching k is accumulated apart.
    dist = [1.0] + [0.0] * (k - 1)
    reached = 0.0
    for p in probabilities:
        q = 1.0 - p
        reached += dist[k - 1] * p
        for j in range(k - 1, 0, -1):
            dist[j] = dist[j] * q + dist[j - 1] * p
        dist[0] *= q
    return min(1.0, max(0.0, reached))


def median(values: Iterable[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
