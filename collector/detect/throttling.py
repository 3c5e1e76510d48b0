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
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.detect import baseline
from collector.detect.detector import Detector, SettledBin, forget_if_idle, load_series
from collector.detect.model import LIKELY, NONE, SUSPECTED, Run, Signal
from collector.detect.params import DetectionConfig, ThrottleParams, TierParams
from collector.detect.saved import counts, integer, maybe_number, number, numbers, record, texts
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

    def to_state(self) -> dict[str, object]:
        return {"start": self.start, "end": self.end, "runs": self.runs,
                "ratios": list(self.ratios), "throttled": self.throttled,
                "slow_probes": list(self.slow_probes), "mechanisms": dict(self.mechanisms),
                "generalized": self.generalized, "probes": list(self.probes)}

    @classmethod
    def from_state(cls, data: object) -> ThrottleBin:
        d = record(data, ("start", "end", "runs", "ratios", "throttled", "slow_probes",
                          "mechanisms", "generalized", "probes"))
        return cls(number(d["start"]), number(d["end"]), integer(d["runs"]),
                   tuple(numbers(d["ratios"])), integer(d["throttled"]),
                   tuple(texts(d["slow_probes"])), counts(d["mechanisms"]),
                   bool(d["generalized"]), tuple(texts(d["probes"])))


@dataclass(slots=True)
class ThrottleSeries:
    streak: Streak = field(default_factory=Streak)
    runs: int = 0
    throttled: int = 0
    ratios: list[float] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)
    mechanisms: dict[str, int] = field(default_factory=dict)
    pool: ThrottleBin | None = None  # bins with too few vantage points, waiting for more

    def to_state(self) -> dict[str, object]:
        return {"streak": self.streak.to_state(), "runs": self.runs,
                "throttled": self.throttled, "ratios": self.ratios, "probes": self.probes,
                "mechanisms": self.mechanisms,
                "pool": None if self.pool is None else self.pool.to_state()}

    @classmethod
    def from_state(cls, data: object) -> ThrottleSeries:
        d = record(data, ("streak", "runs", "throttled", "ratios", "probes", "mechanisms",
                          "pool"))
        return cls(Streak.from_state(d["streak"]), integer(d["runs"]), integer(d["throttled"]),
                   numbers(d["ratios"]), texts(d["probes"]), counts(d["mechanisms"]),
                   None if d["pool"] is None else ThrottleBin.from_state(d["pool"]))

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

    def to_state(self) -> dict[str, object]:
        return {"streak": self.streak.to_state(), "probes": self.probes,
                "last_median": self.last_median}

    @classmethod
    def from_state(cls, data: object) -> SlowdownSeries:
        d = record(data, ("streak", "probes", "last_median"))
        return cls(Streak.from_state(d["streak"]), texts(d["probes"]),
                   maybe_number(d["last_median"]))


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


BASELINE_KEYS = ("baseline_window", "baseline_min_points", "inpaint_low", "inpaint_high",
                 "inpaint_max")


class SlowdownDetector(Detector):
    """Generalized slowdown per network, in every settled bin (before targeted throttling,
    which it makes neutral on a network slow as a whole).

    Each healthy probe's slowness in the bin is the median over its targets of handshake /
    that target's baseline on this network (so the mix of targets it reached does not
    matter), judged against the probe's own history of that number (so a vantage that is
    always a little slower does not either)."""

    name = "slowdown"
    state_version = 1
    legacy_table = "slowdowns"

    def __init__(self, config: DetectionConfig) -> None:
        super().__init__(config)
        self.series: dict[str, SlowdownSeries] = {}

    @staticmethod
    def shape(config: DetectionConfig) -> Mapping[str, Any]:
        throttle = dataclasses.asdict(config.throttle)
        return {"bin": config.block.bin,
                "throttle": {k: v for k, v in throttle.items() if k.startswith("generalized")},
                "tiers": dataclasses.asdict(config.tiers)}

    def judge_bin(self, b: SettledBin) -> list[Signal]:
        config = self.config
        signals: list[Signal] = []
        per_network_ratios: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
        relative: dict[str, list[float]] = defaultdict(list)
        for (asn, target), target_runs in b.runs.items():
            if (target_runs[0].cc, asn) in b.partial:
                continue  # judged already: one probe's late backlog is no network verdict
            base = b.baselines.targets.get(f"{target_runs[0].cc}|{asn}|{target}")
            expected = baseline.predict(base, b.start, config.throttle) if base else None
            if not expected:
                continue
            for run in target_runs:
                if b.healthy.get(run.probe_id) and run.handshake is not None:
                    relative[run.probe_id].append(run.handshake / expected)
        slowdown_open = {k for k in self.series if b.is_open(f"slowdown|{k}|*")}
        for probe_id, values in relative.items():
            probe_bin = b.probes[probe_id]
            value = median(values)
            assert value is not None
            base = b.baselines.probes.setdefault(probe_id, baseline.HourlyBaseline())
            expected = baseline.predict(base, b.start, config.throttle)
            if expected:
                per_network_ratios[(probe_bin.cc, probe_bin.asn)][probe_id] = value / expected
            frozen = b.frozen[probe_bin.cc] or f"{probe_bin.cc}|{probe_bin.asn}" in slowdown_open
            baseline.add(base, b.start, value, config.throttle, frozen)
        for (cc, asn), ratios in sorted(per_network_ratios.items()):
            if (cc, asn) in b.collapsed:
                continue
            key = f"{cc}|{asn}"
            the_bin = SlowdownBin(start=b.start, end=b.end, ratios=ratios)
            if generally_slow(the_bin, config.throttle, config.tiers):
                b.generalized.add((cc, asn))
            elif key not in self.series:
                continue
            series = self.series.setdefault(key, SlowdownSeries())
            signal = step_slowdown(series, the_bin, cc, asn, b.active.get((cc, asn), 0),
                                   config.throttle, config.tiers)
            signals.append(signal)
            forget_if_idle(self.series, key, series.streak.run_start, signal, b.is_open)
        # A network inside a generalized slowdown is neutral for targeted throttling even in
        # a bin too sparse to show it.
        for key, series in self.series.items():
            if series.streak.run_start is not None:
                cc, _, asn = key.partition("|")
                b.generalized.add((cc, asn))
        return signals

    def to_state(self) -> dict[str, Any]:
        return {"version": self.state_version,
                "series": {k: s.to_state() for k, s in self.series.items()}}

    def load_state(self, data: Mapping[str, Any]) -> None:
        self.series = load_series(data, SlowdownSeries.from_state)


class ThrottleDetector(Detector):
    """Targeted throttling per (ASN, target), in every settled bin, on healthy probes only;
    it also trains the per-target handshake baselines."""

    name = "throttle"
    state_version = 2
    legacy_table = "throttles"

    def __init__(self, config: DetectionConfig) -> None:
        super().__init__(config)
        self.series: dict[str, ThrottleSeries] = {}

    @staticmethod
    def shape(config: DetectionConfig) -> Mapping[str, Any]:
        throttle = dataclasses.asdict(config.throttle)
        return {"bin": config.block.bin,
                "throttle": {k: v for k, v in throttle.items() if k not in BASELINE_KEYS},
                "tiers": dataclasses.asdict(config.tiers)}

    def judge_bin(self, b: SettledBin) -> list[Signal]:
        signals = []
        for (asn, target), target_runs in sorted(b.runs.items()):
            cc = target_runs[0].cc
            if (cc, asn) in b.collapsed or (cc, asn) in b.partial:
                continue
            good = [r for r in target_runs if b.healthy.get(r.probe_id)]
            if not good:
                continue
            # Too few vantage points in the bin: the series pools it (``step``).
            signals.extend(self._target(b, f"{cc}|{asn}|{target}", cc, asn, target, good))
        return signals

    def _target(self, b: SettledBin, key: str, cc: str, asn: str, target: str,
                good: list[Run]) -> list[Signal]:
        config = self.config.throttle
        base = b.baselines.targets.setdefault(key, baseline.HourlyBaseline())
        expected = baseline.predict(base, b.start, config)
        ratios: list[float] = []
        slow_probes: set[str] = set()
        counted_probes: set[str] = set()
        throttled = 0
        counted = 0
        mechanisms: Counter[str] = Counter()
        for run in good:
            if run.outcome not in ("ok", "throttled"):
                continue
            ratio = run.slowdown
            if ratio is None and run.handshake is not None and expected:
                ratio = run.handshake / expected
            is_throttled = run.outcome == "throttled"
            counted += 1
            counted_probes.add(run.probe_id)
            if ratio is not None:
                ratios.append(ratio)
            if is_throttled:
                throttled += 1
                if run.mechanism:
                    mechanisms[run.mechanism] += 1
            if is_throttled or (ratio is not None and ratio >= config.warn_ratio):
                slow_probes.add(run.probe_id)
        frozen = b.frozen[cc] or b.is_open(f"throttle|{key}")
        for run in good:
            # A run the probe itself judged throttled is an anomaly: it never trains the
            # baseline, whatever the inpainting would have made of it.
            if run.handshake is not None and run.outcome == "ok" and run.slowdown is None:
                baseline.add(base, b.start, run.handshake, config, frozen)
        series = self.series.get(key)
        if counted == 0 or (series is None and not slow_probes):
            return []
        series = self.series.setdefault(key, ThrottleSeries())
        the_bin = ThrottleBin(
            start=b.start, end=b.end, runs=counted, ratios=tuple(ratios), throttled=throttled,
            slow_probes=tuple(sorted(slow_probes)), mechanisms=dict(mechanisms),
            generalized=(cc, asn) in b.generalized, probes=tuple(sorted(counted_probes)))
        signal = step(series, the_bin, cc, asn, target, b.active.get((cc, asn), 0), config,
                      self.config.tiers)
        if not series.holds():
            forget_if_idle(self.series, key, None, signal, b.is_open)
        return [signal]

    def to_state(self) -> dict[str, Any]:
        return {"version": self.state_version,
                "series": {k: s.to_state() for k, s in self.series.items()}}

    def load_state(self, data: Mapping[str, Any]) -> None:
        self.series = load_series(data, ThrottleSeries.from_state)
