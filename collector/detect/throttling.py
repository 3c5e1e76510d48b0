"""Throttling: targeted slowdowns of one target, and generalized slowdowns of a network.

Targeted (per ASN and target). Each run gets a slowdown ratio R: the target/baseline ratio the
measurement itself computed against a co-hosted baseline (``Run.slowdown``, from the throttling
test), else the target's TLS handshake time over this network's own same-hour history for that
target (``baseline``). A run with a ``throttled`` verdict counts as slow even without a ratio.
A bin is hot when its median R >= ``warn_ratio`` or most of its runs were judged throttled,
clean when the median R <= ``exit_ratio`` and at most ``exit_share`` were. Bins in which the
whole network is slow (the generalized detector's hot bins) are neutral: a slowdown of
everything is not targeted (ref §6.4: "only call it targeted if the baseline stays within
1.5x"). ``likely`` needs ``persistence`` hot bins, ``min_runs`` runs and
``TierParams.likely_probes`` distinct slow probes over the run; a run median R >=
``extreme_ratio`` is marked ``extreme`` (OONI dd-007: >= 10x).

Generalized (per ASN). Each probe's median handshake time in the bin over its own same-hour
history gives a ratio; a bin is hot when at least ``TierParams.floor`` probes and
``generalized_share`` of the measured ones are slower by ``generalized_ratio`` (ref §6.4:
>= 50% of probes slower by >= 50%), clean when at most ``generalized_exit_share`` are.

Sources: ref §6.4 (co-hosted baseline, R >= 3 warning, >= 10 critical, >= 3 probes and >= 6
runs, targeted vs generalized), ref §4.4 (KZ 2022-23: azattyq handshakes > 2 s vs
i.pinimg.com). Assumptions: bins in time order per series; ratios > 0.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from collector.detect.model import LIKELY, NONE, SUSPECTED, Signal
from collector.detect.params import ThrottleParams, TierParams
from collector.detect.stats import median
from collector.detect.streak import Streak
from collector.events.kinds import THROTTLING

MAX_RATIOS = 256  # a run keeps its latest ratios for the median


@dataclass(frozen=True, slots=True)
class ThrottleBin:
    start: float
    end: float
    runs: int  # runs with a ratio or a throttled verdict
    ratios: tuple[float, ...]
    throttled: int
    slow_probes: tuple[str, ...]
    mechanisms: Mapping[str, int]
    generalized: bool  # the whole network was slow in this bin
    probes: tuple[str, ...] = ()  # every probe with a counted run (empty: not pooled)

    def to_state(self) -> list[object]:
        return [self.start, self.end, self.runs, list(self.ratios), self.throttled,
                list(self.slow_probes), dict(self.mechanisms), self.generalized,
                list(self.probes)]

    @classmethod
    def from_state(cls, data: list[object]) -> ThrottleBin:
        start, end, runs, ratios, throttled, slow, mechanisms, generalized, probes = data
        assert isinstance(ratios, list) and isinstance(slow, list)
        assert isinstance(mechanisms, dict) and isinstance(probes, list)
        return cls(float(start), float(end), int(runs),  # type: ignore[arg-type, call-overload]
                   tuple(float(r) for r in ratios), int(throttled),  # type: ignore[call-overload]
                   tuple(str(p) for p in slow), dict(mechanisms), bool(generalized),
                   tuple(str(p) for p in probes))


@dataclass(slots=True)
class ThrottleSeries:
    streak: Streak = field(default_factory=Streak)
    runs: int = 0
    throttled: int = 0
    ratios: list[float] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)
    mechanisms: dict[str, int] = field(default_factory=dict)
    pool: ThrottleBin | None = None  # bins with too few vantage points, waiting for more

    def to_state(self) -> list[object]:
        return [self.streak.to_state(), self.runs, self.throttled, self.ratios, self.probes,
                self.mechanisms, None if self.pool is None else self.pool.to_state()]

    @classmethod
    def from_state(cls, data: list[object]) -> ThrottleSeries:
        streak, runs, throttled, ratios, probes, mechanisms, pool = data
        assert isinstance(streak, list) and isinstance(ratios, list)
        assert isinstance(probes, list) and isinstance(mechanisms, dict)
        assert pool is None or isinstance(pool, list)
        return cls(Streak.from_state(streak), int(runs), int(throttled),  # type: ignore[call-overload]
                   [float(r) for r in ratios], [str(p) for p in probes], dict(mechanisms),
                   None if pool is None else ThrottleBin.from_state(pool))

    def holds(self) -> bool:
        """Something worth keeping: a run, or runs pooled for the next bin."""
        return self.streak.run_start is not None or self.pool is not None


def _merge(a: ThrottleBin | None, b: ThrottleBin) -> ThrottleBin:
    if a is None:
        return b
    mechanisms = Counter(a.mechanisms)
    mechanisms.update(b.mechanisms)
    return ThrottleBin(
        start=a.start, end=b.end, runs=a.runs + b.runs,
        ratios=(a.ratios + b.ratios)[-MAX_RATIOS:], throttled=a.throttled + b.throttled,
        slow_probes=tuple(sorted(set(a.slow_probes) | set(b.slow_probes))),
        mechanisms=dict(mechanisms), generalized=False,
        probes=tuple(sorted(set(a.probes) | set(b.probes))))


def _slow(ratios: list[float] | tuple[float, ...], throttled: int, runs: int,
          params: ThrottleParams) -> bool:
    middle = median(ratios)
    if middle is not None and middle >= params.warn_ratio:
        return True
    return throttled > 0 and throttled >= 0.5 * runs


def step(series: ThrottleSeries, b: ThrottleBin, cc: str, asn: str, target: str,
         active_probes: int, params: ThrottleParams, tiers: TierParams) -> Signal:
    """Advance a targeted series by one settled bin and say what it now shows.

    A bin is judged only on enough vantage points (``TierParams.floor``, fewer in a smaller
    ASN): one probe's view of one target is an anecdote, not a median. A bin with fewer
    probes (``b.probes``) is pooled with the following ones until they add up, for at most
    ``cluster_window``: probes measuring less often than the bin (an hourly watch list in
    5-minute bins) are then judged together instead of never.
    """
    at = b.end
    needed = min(tiers.floor, max(1, active_probes))
    if series.pool is not None and b.start - series.pool.start > params.cluster_window:
        series.pool = None
    if b.runs and not b.generalized and b.probes:
        pooled = _merge(series.pool, b)
        if len(pooled.probes) < needed:
            series.pool = pooled
            b = dataclasses.replace(b, runs=0)  # judged later, with the next vantage points
        else:
            series.pool, b = None, pooled
    if b.runs and not b.generalized:
        hot = _slow(b.ratios, b.throttled, b.runs, params)
        middle = median(b.ratios)
        clean = (middle is None or middle <= params.exit_ratio) and \
            b.throttled <= params.exit_share * b.runs
        if series.streak.step(b.start, hot, clean):
            series.runs, series.throttled, series.ratios = 0, 0, []
            series.probes, series.mechanisms = [], {}
        if series.streak.run_start is not None:
            series.runs += b.runs
            series.throttled += b.throttled
            series.ratios = (series.ratios + list(b.ratios))[-MAX_RATIOS:]
            series.probes = sorted(set(series.probes) | set(b.slow_probes))
            counts = Counter(series.mechanisms)
            counts.update(b.mechanisms)
            series.mechanisms = dict(counts)
    streak = series.streak
    slow = _slow(series.ratios, series.throttled, series.runs, params)
    level = NONE
    if streak.run_start is not None and slow:
        if streak.hot_bins >= tiers.persistence and series.runs >= params.min_runs and \
                len(series.probes) >= tiers.likely_probes(active_probes):
            level = LIKELY
        elif series.runs >= 2:
            level = SUSPECTED
    middle = median(series.ratios)
    mechanism = max(sorted(series.mechanisms), key=lambda k: series.mechanisms[k]) \
        if series.mechanisms else None
    return Signal(
        kind=THROTTLING, detector="throttle", cc=cc, asn=asn, target=target, level=level,
        at=at, onset=streak.run_start if level else None,
        recovered_at=streak.recovered(tiers.exit_bins), asns=(asn,),
        probes=tuple(series.probes), mechanism=mechanism,
        stats={"runs": series.runs, "throttled": series.throttled,
               "median_ratio": None if middle is None else round(middle, 2),
               "extreme": middle is not None and middle >= params.extreme_ratio,
               "bins": streak.hot_bins, "class": "targeted"})


@dataclass(frozen=True, slots=True)
class SlowdownBin:
    start: float
    end: float
    ratios: Mapping[str, float]  # probe -> its median handshake over its own history


@dataclass(slots=True)
class SlowdownSeries:
    streak: Streak = field(default_factory=Streak)
    probes: list[str] = field(default_factory=list)
    last_median: float | None = None

    def to_state(self) -> list[object]:
        return [self.streak.to_state(), self.probes, self.last_median]

    @classmethod
    def from_state(cls, data: list[object]) -> SlowdownSeries:
        streak, probes, last = data
        assert isinstance(streak, list) and isinstance(probes, list)
        return cls(Streak.from_state(streak), [str(p) for p in probes],
                   None if last is None else float(last))  # type: ignore[arg-type]


def generally_slow(b: SlowdownBin, params: ThrottleParams, tiers: TierParams) -> bool:
    slowed = [p for p, r in b.ratios.items() if r >= params.generalized_ratio]
    return len(slowed) >= tiers.floor and len(slowed) >= params.generalized_share * len(b.ratios)


def step_slowdown(series: SlowdownSeries, b: SlowdownBin, cc: str, asn: str,
                  active_probes: int, params: ThrottleParams, tiers: TierParams) -> Signal:
    """Advance a network's generalized-slowdown series by one settled bin."""
    if b.ratios:
        slowed = sorted(p for p, r in b.ratios.items() if r >= params.generalized_ratio)
        hot = generally_slow(b, params, tiers)
        clean = len(slowed) <= params.generalized_exit_share * len(b.ratios)
        if series.streak.step(b.start, hot, clean):
            series.probes = []
        if series.streak.run_start is not None:
            series.probes = sorted(set(series.probes) | set(slowed))
        series.last_median = median(b.ratios.values())
    streak = series.streak
    level = NONE
    if streak.run_start is not None and streak.hot_bins:
        if streak.hot_bins >= tiers.persistence and \
                len(series.probes) >= tiers.likely_probes(active_probes):
            level = LIKELY
        else:
            level = SUSPECTED
    return Signal(
        kind=THROTTLING, detector="slowdown", cc=cc, asn=asn, target=None, level=level,
        at=b.end, onset=streak.run_start if level else None,
        recovered_at=streak.recovered(tiers.exit_bins), asns=(asn,),
        probes=tuple(series.probes),
        stats={"median_ratio": None if series.last_median is None
               else round(series.last_median, 2),
               "measured": len(b.ratios), "bins": streak.hot_bins, "class": "generalized"})
