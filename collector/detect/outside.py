"""Shutdown verdict from outside-in probing alone: blocks up against their recent median.

Method (IODA's active-probing rule, ref detection.md §1.2-1.3): the signal per network and per
country is the number of its /24 blocks whose Trinocular state is ``up``. The current count is
compared with the median of the recent history (IODA: 7 days); below 0.8 of it is a
``warning``, below 0.5 ``critical``. Like IODA's watchtower, no verdict is given while the
baseline is under ``min_baseline`` blocks (``minprediction``, 20 at IODA) or the history is
shorter than ``min_history`` points (warm-up), and points outside 0.8-2.0 of the baseline are
inpainted: the history learns the baseline instead of the outlier, so an outage never trains
the baseline (ref §5 lesson 3).

Pure and versioned: the prober records block states; this module only interprets counts.
"""

from __future__ import annotations

import enum
import statistics
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from collector.outside.belief import BlockState

VERDICT_VERSION = 1


class Level(enum.StrEnum):
    NONE = "none"
    WARNING = "warning"
    CRITICAL = "critical"
    INSUFFICIENT = "insufficient"


@dataclass(frozen=True, slots=True)
class OutsideParams:
    warning_below: float = 0.8
    critical_below: float = 0.5
    min_baseline: float = 20.0
    min_history: int = 6
    inpaint_low: float = 0.8
    inpaint_high: float = 2.0
    # Consecutive critical readings before outside-in darkness opens a shutdown of its own
    # (IODA alerts on one; Kuzot waits for a second look: one round of loss on our own path
    # must not become an event). The prober confirms a network that turns critical within a
    # minute (``outside.confirm_after``), so the second look need not wait a round.
    min_rounds: int = 2

    def __post_init__(self) -> None:
        if not 0 < self.critical_below < self.warning_below <= 1:
            raise ValueError("need 0 < critical_below < warning_below <= 1")
        if self.min_baseline < 0 or self.min_history < 1 or self.min_rounds < 1:
            raise ValueError("min_baseline must be >= 0, min_history and min_rounds >= 1")
        if not 0 < self.inpaint_low <= 1 <= self.inpaint_high:
            raise ValueError("need 0 < inpaint_low <= 1 <= inpaint_high")


@dataclass(frozen=True, slots=True)
class Verdict:
    level: Level
    current: float
    baseline: float | None

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or self.baseline == 0:
            return None
        return self.current / self.baseline


def blocks_up(states: Iterable[tuple[str, BlockState]]) -> Counter[str]:
    """Count ``up`` blocks per group key (a network, or a country); other states count 0."""
    counts: Counter[str] = Counter()
    for key, state in states:
        counts[key] += 1 if state is BlockState.UP else 0
    return counts


def judge(current: float, history: Sequence[float], params: OutsideParams) -> Verdict:
    """Compare the current count of blocks up with the median of the (inpainted) history."""
    if len(history) < params.min_history:
        return Verdict(Level.INSUFFICIENT, current, None)
    baseline = float(statistics.median(history))
    if baseline < params.min_baseline or baseline == 0:
        return Verdict(Level.INSUFFICIENT, current, baseline)
    ratio = current / baseline
    if ratio < params.critical_below:
        level = Level.CRITICAL
    elif ratio < params.warning_below:
        level = Level.WARNING
    else:
        level = Level.NONE
    return Verdict(level, current, baseline)


def to_history(verdict: Verdict, params: OutsideParams) -> float:
    """The value the history should learn: the baseline instead of an outlier (inpainting)."""
    ratio = verdict.ratio
    if verdict.baseline is None or ratio is None:
        return verdict.current
    if ratio < params.inpaint_low or ratio > params.inpaint_high:
        return verdict.baseline
    return verdict.current
