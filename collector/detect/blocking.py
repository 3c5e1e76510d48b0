"""Block detection per (ASN, target), judged on each probe's last two rounds.

Method. For every healthy probe of the network (``health``) the series keeps the probe's last
two *rounds* of the target: a round is the probe's usable runs (``ok``, ``blocked`` or
``throttled``; ``inconclusive`` and ``down`` runs say the control failed or the site is down
for everyone, and are not used: the "control healthy" condition) in one bin, reduced to one
vote (``bin_votes``: blocked when most of them were). Persistence is counted in these rounds:
a probe persistently blocked is one whose two consecutive rounds were both blocked. A probe
measuring less often than the bin has one run per round, so a block is ``likely`` about two
probe cycles after it begins (an hour for a slow watch list); one measuring more often (a
2-minute cadence, an event window's quartered interval) has several runs per round, so it
is ``likely`` about two bins after, and one vantage point measuring often never outvotes
the others. Then

* an episode begins when at least half of the probes' latest runs are blocked (``hot_share``)
  and at least ``TierParams.floor`` probes are blocked (fewer when the ASN has fewer);
* it is ``likely`` when the Wilson lower bound of the blocked share over the probes' last two
  runs is at least ``likely_share`` and the persistently blocked probes meet
  ``TierParams.likely_probes``; ``suspected`` with two blocked runs and a blocked majority;
* a probe that came back from a blocked round since the onset (blocked, then ok: a *flip*,
  within ``flap_window``) shows a partial failure, which a block rarely gives: a CDN in
  trouble failing 20-60 % of one site's runs at random, or a leaky middlebox. While any probe
  of the series has flipped, a probe counts as persistently blocked only once its blocked
  rounds have lasted ``flap_hold``: a partial failure over two rounds cannot be told from a
  block by chance, a longer consistent run can. ``suspected`` is unchanged;
* it ends when at most ``exit_share`` of those runs are blocked (every probe back to normal for
  two rounds: the hysteresis of ref §6.5), also when that holds once the single most blocked
  probe is left aside; the end is the earliest of the clean runs.

A probe whose last two runs were blocked *outside* any episode is chronic for that target (a
volunteer's own DNS filter, a broken middlebox at home): it is its baseline, left out of the
shares, so it can neither raise an episode nor hold one open. Chronic flags are not learned
during an episode (anomalies never train baselines, ref §5).

The mechanism carried is the episode's most frequent ``layer:mechanism``; a known fingerprint
(``blockpage:<name>``, or ``issuer:<name>`` of a known interception CA) is carried for the
``confirmed`` tier.

The flapping rule is Kuzot's, measured in ``bench/detection_eval.py``: at a 5-minute cadence,
three probes of six each blocked in two rounds running while a CDN failed up to 60 % of the
site's runs gave two false ``likely`` events in twelve eventful days; a real block's probes
rarely flip before it is ``likely`` (and when one does, the block is ``likely`` ``flap_hold``
after it began). The hold (30 minutes) is longer than the blocked runs such a partial failure
gave by chance (20 minutes at most in those days) and adds at most one round at cadences of
15 minutes and more.

Sources: ref §6.3 (Wilson 95% lower bound >= 0.5, >= 3 distinct healthy probes or fewer in small
ASNs, persistence over 2 bins, canaries and control healthy), ref §6.5 (hysteresis), OONI's
confirmed = fingerprint (ref §3.5). Assumptions: runs of one series arrive in time order per
probe (bins are settled in order); ``active_probes`` is the ASN's number of probes heard from
recently.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from collector.detect.detector import Detector, SettledBin, load_series
from collector.detect.model import LIKELY, NONE, SUSPECTED, Signal
from collector.detect.params import BlockParams, DetectionConfig, TierParams
from collector.detect.saved import (
    counts,
    integer,
    mapping,
    maybe_number,
    number,
    numbers,
    record,
    texts,
)
from collector.detect.stats import wilson_lower
from collector.events.kinds import BLOCK

MAX_FINGERPRINTS = 8
STALE_CYCLES = 3.0  # a probe silent for three of its cycles no longer speaks for the target
DEFAULT_CYCLE = 3600.0  # assumed cycle of a probe with a single run so far
MAX_STALE = 86400.0
MAX_FLIPS = 8  # flips remembered per probe (only whether there is one in the window matters)


@dataclass(frozen=True, slots=True)
class BlockRun:
    probe_id: str
    t: float
    blocked: bool
    mechanism: str  # "layer:mechanism" of a blocked run
    fingerprint: str | None


class Round(NamedTuple):
    """One probe's vote for one bin, as a series remembers it (saved as a list)."""

    t: float
    blocked: int  # 1 when the round was blocked
    mechanism: str
    fingerprint: str | None

    @classmethod
    def from_state(cls, data: object) -> Round:
        d = record(data, cls._fields)
        return cls(number(d["t"]), integer(d["blocked"]), str(d["mechanism"]),
                   None if d["fingerprint"] is None else str(d["fingerprint"]))


@dataclass(slots=True)
class ProbeTrack:
    runs: list[Round] = field(default_factory=list)  # the last two rounds
    chronic: bool = False
    streak: float | None = None  # first round of the current run of blocked rounds
    flips: list[float] = field(default_factory=list)  # recent blocked -> ok rounds (times)

    def times(self) -> list[float]:
        return [r.t for r in self.runs]

    def blocked(self) -> list[bool]:
        return [bool(r.blocked) for r in self.runs]

    def add(self, vote: BlockRun) -> None:
        """Remember the probe's round ``vote``: its last two rounds, the start of its blocked
        streak, and when it came back from a blocked round (``step`` forgets old flips)."""
        if vote.blocked:
            if self.streak is None or not self.runs or not self.runs[-1].blocked:
                self.streak = vote.t
        else:
            if self.runs and self.runs[-1].blocked:
                self.flips = [*self.flips, vote.t][-MAX_FLIPS:]
            self.streak = None
        self.runs = (self.runs + [Round(vote.t, int(vote.blocked), vote.mechanism,
                                        vote.fingerprint)])[-2:]


@dataclass(slots=True)
class BlockSeries:
    """Serializable state of one (ASN, target) series."""

    probes: dict[str, ProbeTrack] = field(default_factory=dict)
    onset: float | None = None  # start of the current episode
    runs: int = 0  # usable runs of non-chronic probes since the onset
    blocked: int = 0
    blocked_probes: list[str] = field(default_factory=list)
    mechanisms: dict[str, int] = field(default_factory=dict)
    fingerprints: list[str] = field(default_factory=list)

    def to_state(self) -> dict[str, object]:
        return {"probes": {p: {"runs": [list(r) for r in t.runs], "chronic": t.chronic,
                               "streak": t.streak, "flips": t.flips}
                           for p, t in self.probes.items()},
                "onset": self.onset, "runs": self.runs, "blocked": self.blocked,
                "blocked_probes": self.blocked_probes, "mechanisms": self.mechanisms,
                "fingerprints": self.fingerprints}

    @classmethod
    def from_state(cls, data: object) -> BlockSeries:
        d = record(data, ("probes", "onset", "runs", "blocked", "blocked_probes",
                          "mechanisms", "fingerprints"))
        probes = {}
        for probe_id, saved_track in mapping(d["probes"]).items():
            if not isinstance(saved_track, Mapping) or "streak" not in saved_track:
                saved_track = _converted_track(record(saved_track, ("runs", "chronic")))
            track = record(saved_track, ("runs", "chronic", "streak", "flips"))
            probes[str(probe_id)] = ProbeTrack([Round.from_state(r) for r in track["runs"]],
                                               bool(track["chronic"]),
                                               maybe_number(track["streak"]),
                                               numbers(track["flips"]))
        return cls(probes, maybe_number(d["onset"]), integer(d["runs"]), integer(d["blocked"]),
                   texts(d["blocked_probes"]), counts(d["mechanisms"]), texts(d["fingerprints"]))

    def idle(self) -> bool:
        """Nothing worth keeping: no episode, no chronic probe, no blocked run in memory (its
        flips are older than any episode that may follow, and count only during one)."""
        return self.onset is None and not any(
            t.chronic or any(t.blocked()) for t in self.probes.values())


def _converted_track(saved: Mapping[str, Any]) -> dict[str, Any]:
    """A probe's track saved by state version 2 (last two rounds, chronic flag) in version 3's
    fields: its streak begins at the first of its trailing blocked rounds, and the flips it
    shows (blocked, then ok) are its only ones known."""
    rounds = [Round.from_state(r) for r in saved["runs"]]
    streak = None
    flips = []
    for before, after in zip([None, *rounds], rounds, strict=False):
        if after.blocked:
            streak = after.t if streak is None else streak
        else:
            streak = None
            if before is not None and before.blocked:
                flips.append(after.t)
    return {**saved, "streak": streak, "flips": flips}


def is_known_fingerprint(fingerprint: str, params: BlockParams) -> bool:
    kind, _, name = fingerprint.partition(":")
    return kind == "blockpage" or (kind == "issuer" and name in params.known_mitm_issuers)


def _forget_stale(series: BlockSeries, now: float) -> None:
    for probe_id in list(series.probes):
        times = series.probes[probe_id].times()
        cycle = times[-1] - times[0] if len(times) == 2 and times[-1] > times[0] \
            else DEFAULT_CYCLE
        if now - times[-1] > min(MAX_STALE, STALE_CYCLES * cycle):
            del series.probes[probe_id]


def bin_votes(runs: Sequence[BlockRun]) -> list[BlockRun]:
    """One vote per probe for one bin: its runs of the target, reduced to a single round.

    A probe that measures the target more often than the bin (a 2-minute cadence in 5-minute
    bins, an event window's quartered interval) is one vantage point, not several: its runs in
    the bin count once, blocked when most of them were (a tie is not blocked, so one stray
    failure beside one success proves nothing). The vote's time is the first run that agrees
    with it (the first blocked run of a blocked vote, the first clean run of a clean one), which
    keeps onsets and recoveries at the runs that showed them. Mechanism: the commonest among
    the blocked runs; fingerprint: the first one carried.
    """
    by_probe: dict[str, list[BlockRun]] = {}
    for run in sorted(runs, key=lambda r: (r.t, r.probe_id)):
        by_probe.setdefault(run.probe_id, []).append(run)
    votes = []
    for probe_id, probe_runs in by_probe.items():
        blocked = [r for r in probe_runs if r.blocked]
        if 2 * len(blocked) <= len(probe_runs):
            first = next(r for r in probe_runs if not r.blocked)
            votes.append(BlockRun(probe_id, first.t, False, first.mechanism, None))
            continue
        counts = Counter(r.mechanism for r in blocked)
        mechanism = max(sorted(counts), key=lambda m: counts[m])
        fingerprint = next((r.fingerprint for r in blocked if r.fingerprint), None)
        votes.append(BlockRun(probe_id, blocked[0].t, True, mechanism, fingerprint))
    return sorted(votes, key=lambda r: (r.t, r.probe_id))


def step(series: BlockSeries, runs: Sequence[BlockRun], now: float, cc: str, asn: str,
         target: str, active_probes: int, params: BlockParams, tiers: TierParams) -> Signal:
    """Add one settled bin's healthy usable runs (any order) and say what the series shows.

    The bin's runs become one vote per probe (``bin_votes``), so a probe's rounds are counted
    in votes whatever its cadence. Chronic flags are those learned before this bin: a probe's
    first two blocked votes may be the start of a block, so the check that opens an episode
    comes first and chronic flags are learned only when it did not open one.
    """
    for vote in bin_votes(runs):
        track = series.probes.setdefault(vote.probe_id, ProbeTrack())
        track.add(vote)
        if series.onset is not None and not track.chronic:
            series.runs += 1
            if vote.blocked:
                _count_blocked(series, vote)
    _forget_stale(series, now)
    for track in series.probes.values():
        track.flips = [t for t in track.flips if t >= now - params.flap_window]
    voters = {p: t for p, t in series.probes.items() if not t.chronic}
    latest = [t.blocked()[-1] for t in voters.values()]
    last_two = [b for t in voters.values() for b in t.blocked()]
    needed = min(tiers.floor, max(1, active_probes))
    recovered_at = None
    if series.onset is None:
        if len(latest) >= needed and sum(latest) >= needed and \
                sum(latest) >= params.hot_share * len(latest):
            # Each blocked probe's streak began at its first blocked run still remembered;
            # the episode began when ``needed`` probes were blocked, so one stray earlier
            # failure (a CDN hiccup) does not drag the onset back.
            firsts = sorted(_streak_start(t) for t in voters.values() if t.blocked()[-1])
            series.onset = firsts[min(needed, len(firsts)) - 1]
            series.runs, series.blocked = 0, 0
            series.blocked_probes, series.mechanisms, series.fingerprints = [], {}, []
            for probe_id, track in voters.items():
                for t, blocked, mechanism, fingerprint in track.runs:
                    if t < series.onset:
                        continue
                    series.runs += 1
                    if blocked:
                        _count_blocked(series, BlockRun(probe_id, t, True, mechanism,
                                                        fingerprint))
        else:
            # No episode: a probe blocked in both of its last rounds is its own baseline.
            for track in series.probes.values():
                track.chronic = len(track.runs) == 2 and all(track.blocked())
    else:
        settled = sorted((t for t in voters.values() if len(t.runs) == 2),
                         key=lambda t: sum(t.blocked()))
        # Back to normal over two rounds, or so once the single most blocked probe is left
        # aside (it may have become broken meanwhile; outside the episode it turns chronic).
        clean = _clean(settled, params) or (len(settled) - 1 >= needed and
                                            _clean(settled[:-1], params))
        if len(settled) >= needed and clean:
            recovered_at = min(r.t for t in settled for r in t.runs if not r.blocked)
    return _signal(series, voters, latest, last_two, recovered_at, now, cc, asn, target,
                   active_probes, params, tiers)


def _flipped(track: ProbeTrack, onset: float | None, now: float, params: BlockParams) -> bool:
    """Whether the probe came back from a blocked round during the episode (since its onset,
    within the last ``flap_window``): what a partial failure does and a block rarely does."""
    if onset is None:
        return False
    since = max(onset, now - params.flap_window)
    return any(t >= since for t in track.flips)


def _streak_start(track: ProbeTrack) -> float:
    times, blocked = track.times(), track.blocked()
    return times[0] if all(blocked) else times[-1]


def _clean(tracks: list[ProbeTrack], params: BlockParams) -> bool:
    blocked = sum(b for t in tracks for b in t.blocked())
    return blocked <= params.exit_share * 2 * len(tracks) and blocked < 2 * len(tracks)


def _count_blocked(series: BlockSeries, run: BlockRun) -> None:
    series.blocked += 1
    if run.probe_id not in series.blocked_probes:
        series.blocked_probes = sorted([*series.blocked_probes, run.probe_id])
    series.mechanisms[run.mechanism] = series.mechanisms.get(run.mechanism, 0) + 1
    if run.fingerprint and run.fingerprint not in series.fingerprints and \
            len(series.fingerprints) < MAX_FINGERPRINTS:
        series.fingerprints.append(run.fingerprint)


def _signal(series: BlockSeries, voters: dict[str, ProbeTrack], latest: list[bool],
            last_two: list[bool], recovered_at: float | None, now: float, cc: str, asn: str,
            target: str, active_probes: int, params: BlockParams, tiers: TierParams) -> Signal:
    level = NONE
    lower = wilson_lower(sum(last_two), len(last_two), params.wilson_z)
    flapping = any(_flipped(t, series.onset, now, params) for t in voters.values())
    persistent = [p for p, t in voters.items() if len(t.runs) == 2 and all(t.blocked())
                  and (not flapping or (t.streak is not None
                                        and now - t.streak >= params.flap_hold))]
    onset = series.onset
    if onset is not None and recovered_at is None:
        if lower >= params.likely_share and len(persistent) >= tiers.likely_probes(active_probes):
            level = LIKELY
        elif sum(last_two) >= 2 and latest and sum(latest) >= params.hot_share * len(latest):
            level = SUSPECTED
    layer = mechanism = None
    if series.mechanisms:
        top = max(sorted(series.mechanisms), key=lambda k: series.mechanisms[k])
        layer_text, _, mechanism_text = top.partition(":")
        layer, mechanism = layer_text or None, mechanism_text or None
    known = [f for f in series.fingerprints if is_known_fingerprint(f, params)]
    signal = Signal(
        kind=BLOCK, detector="block", cc=cc, asn=asn, target=target, level=level, at=now,
        onset=onset if level else None, recovered_at=recovered_at, asns=(asn,),
        probes=tuple(series.blocked_probes), mechanism=mechanism, layer=layer,
        fingerprint=known[0] if known else None,
        stats={"runs": series.runs, "blocked": series.blocked,
               "wilson_lower": round(lower, 3), "persistent_probes": len(persistent),
               "fingerprints": list(series.fingerprints)})
    if recovered_at is not None:
        series.onset = None
    return signal


class BlockDetector(Detector):
    """Blocking per (ASN, target), in every settled bin, on healthy probes' usable runs."""

    name = "block"
    # 2: persistence counted in rounds (one vote per probe and bin); 3: each probe's blocked
    # streak and its flips (blocked, then ok) are kept for the flapping rule.
    state_version = 3
    convertible = True  # rounds keep their times; thresholds apply afresh at the next bin
    converts_from = frozenset({2})  # streaks and flips are taken from the two rounds kept
    legacy_table = "blocks"

    def __init__(self, config: DetectionConfig) -> None:
        super().__init__(config)
        self.series: dict[str, BlockSeries] = {}

    @staticmethod
    def shape(config: DetectionConfig) -> Mapping[str, Any]:
        return {"block": dataclasses.asdict(config.block),
                "tiers": dataclasses.asdict(config.tiers)}

    def judge_bin(self, b: SettledBin) -> list[Signal]:
        signals = []
        for (asn, target), target_runs in sorted(b.runs.items()):
            cc = target_runs[0].cc
            if (cc, asn) in b.collapsed:
                continue
            usable = [BlockRun(r.probe_id, r.t, r.outcome == "blocked",
                               f"{r.layer or ''}:{r.mechanism or ''}", r.fingerprint)
                      for r in target_runs if b.healthy.get(r.probe_id)
                      and r.outcome in ("ok", "blocked", "throttled")]
            key = f"{cc}|{asn}|{target}"
            series = self.series.get(key)
            if series is None and not any(r.blocked for r in usable):
                continue
            if not usable:
                continue
            series = self.series.setdefault(key, BlockSeries())
            signal = step(series, usable, b.end, cc, asn, target, b.active.get((cc, asn), 0),
                          self.config.block, self.config.tiers)
            if series.idle() and signal.level == NONE and not b.is_open(signal.key):
                del self.series[key]
            signals.append(signal)
        return signals

    def to_state(self) -> dict[str, Any]:
        return {"version": self.state_version,
                "series": {k: s.to_state() for k, s in self.series.items()}}

    def load_state(self, data: Mapping[str, Any]) -> None:
        self.series = load_series(data, BlockSeries.from_state)
