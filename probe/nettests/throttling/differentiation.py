"""Wehe's decision rule for traffic differentiation, as pure functions.

Wehe (Kakhki et al. IMC 2015; Li et al. SIGCOMM 2019) replays the same bytes twice, once as the
original (with the trigger: here the target's TLS SNI) and once as a control (an innocuous
SNI), and compares the two sets of throughput samples:

* the normalized difference of the mean throughputs,
  ``area = (mean_control - mean_original) / max(mean_control, mean_original)``
  (positive when the original was slower);
* the two-sample Kolmogorov-Smirnov test on the non-zero samples.

Differentiation when ``|area| > 0.5`` and ``p < 0.01``; no differentiation when ``|area| < 0.5``
and ``p > 0.01``; anything else is inconclusive. The sign says which side was slower.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from probe.nettests.throttling.ks import ks_2samp

AREA_THRESHOLD = 0.5
KS_ALPHA = 0.01

Verdict = Literal["differentiation", "none", "inconclusive"]


@dataclass(frozen=True, slots=True)
class Differentiation:
    """The outcome and the numbers behind it (rates in bit/s)."""

    verdict: Verdict
    area: float | None
    ks_statistic: float | None
    ks_pvalue: float | None
    slower: Literal["original", "control"] | None
    original_mean_bps: float | None
    control_mean_bps: float | None
    original_samples: int
    control_samples: int

    def as_record(self) -> dict[str, object]:
        return {
            "verdict": self.verdict,
            "area": _round(self.area, 4),
            "ks_statistic": _round(self.ks_statistic, 4),
            "ks_pvalue": None if self.ks_pvalue is None else float(f"{self.ks_pvalue:.4g}"),
            "slower": self.slower,
            "original_mean_bps": _round(self.original_mean_bps, 0),
            "control_mean_bps": _round(self.control_mean_bps, 0),
            "original_samples": self.original_samples,
            "control_samples": self.control_samples,
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def normalized_difference(original: Sequence[float], control: Sequence[float]) -> float | None:
    """Wehe's area: ``(mean_control - mean_original) / max(means)``; None if both means are 0."""
    if not original or not control:
        return None
    mean_o, mean_c = statistics.fmean(original), statistics.fmean(control)
    top = max(mean_o, mean_c)
    if top <= 0:
        return None
    return (mean_c - mean_o) / top


def decide(
    original: Sequence[float],
    control: Sequence[float],
    area_threshold: float = AREA_THRESHOLD,
    alpha: float = KS_ALPHA,
) -> Differentiation:
    """Apply Wehe's rule to two sets of throughput samples (any consistent unit)."""
    nonzero_o = [x for x in original if x > 0]
    nonzero_c = [x for x in control if x > 0]
    area = normalized_difference(original, control)
    mean_o = statistics.fmean(original) if original else None
    mean_c = statistics.fmean(control) if control else None
    if area is None or not nonzero_o or not nonzero_c:
        return Differentiation("inconclusive", area, None, None, None, mean_o, mean_c,
                               len(nonzero_o), len(nonzero_c))
    result = ks_2samp(nonzero_o, nonzero_c)
    slower: Literal["original", "control"] | None = None
    if area > 0:
        slower = "original"
    elif area < 0:
        slower = "control"
    verdict: Verdict = "inconclusive"
    if abs(area) > area_threshold and result.pvalue < alpha:
        verdict = "differentiation"
    elif abs(area) < area_threshold and result.pvalue > alpha:
        verdict = "none"
    return Differentiation(verdict, area, result.statistic, result.pvalue, slower, mean_o,
                           mean_c, len(nonzero_o), len(nonzero_c))
