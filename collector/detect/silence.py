"""Shutdown detection from heartbeat silence, against each probe's own miss history.

Method. Every contact from a probe (heartbeat or upload, by the collector's clock) is recorded
in its ``Liveness``: the last contact and the long gaps of the past ``history`` (7 days). For a
silence of at least D seconds the probe's own null probability is the share of its observed
time it spent silent for D or more, q(D) = sum(max(0, gap - D)) / observed time, smoothed by a
prior of ``prior_miss_rate`` worth ``prior_weight`` of observation. At evaluation time the
silent probes of a group (an ASN or a country) whose silences began together (within
``onset_spread``) form a cluster of k probes, silent for at least D; under independence the
number of the group's n probes silent that long is Poisson-binomial with the probes' q(D), and
the group fires when P(X >= k) < ``alpha``.

Sources: ref §6.2 (binomial test against the per-probe 5-min miss rate, fire below 1e-4; 60 s
heartbeats); Trinocular's per-block prior reply rate (Quan et al., SIGCOMM 2013) for "judge
silence against the target's own history". Kuzot generalises the binomial to a different p
per probe (Poisson-binomial) and measures p as a time share, which captures probes whose
misses come in long runs (reboots) as well as jittery ones.

Assumptions: contact times come from one clock (the collector's); per-probe silences are
independent when the network is up; a group has at least ``TierParams.floor`` probes in the
cluster before anything fires. Long gaps that overlap an event window or a detected shutdown
are kept out of the history (anomalies never train the baseline, ref §5 lesson 3).

Parameters (``SilenceParams``): ``heartbeat_interval`` and ``grace`` (a contact later than
their sum is a miss), ``alpha``, ``onset_spread``, ``bin`` (the persistence unit: the cluster
must also have fired one bin earlier to count as persistent), ``history``, ``prior_miss_rate``,
``prior_weight``, ``active_window`` (probes heard within it belong to the group).
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.detect.detector import Detector, FleetView, load_series
from collector.detect.model import LIKELY, NONE, SUSPECTED, Signal
from collector.detect.params import DetectionConfig, SilenceParams
from collector.detect.saved import integer, maybe_number, number, numbers, record, texts
from collector.detect.stats import poisson_binomial_tail
from collector.events.kinds import SHUTDOWN


@dataclass(slots=True)
class Liveness:
    """One probe's contact history. Serializable: all fields are numbers and lists."""

    first_seen: float
    last_seen: float
    # (start, length, counted): gaps longer than interval + grace within ``history``.
    gaps: list[list[float]] = field(default_factory=list)
    resumed_at: float | None = None  # the contact that ended the latest long gap

    def to_state(self) -> dict[str, object]:
        return {"first_seen": self.first_seen, "last_seen": self.last_seen, "gaps": self.gaps,
                "resumed_at": self.resumed_at}

    @classmethod
    def from_state(cls, data: object) -> Liveness:
        d = record(data, ("first_seen", "last_seen", "gaps", "resumed_at"))
        gaps = d["gaps"] if isinstance(d["gaps"], list) else []
        return cls(number(d["first_seen"]), number(d["last_seen"]),
                   [numbers(g) for g in gaps], maybe_number(d["resumed_at"]))


def record_contact(live: Liveness, t: float, params: SilenceParams,
                   counted: bool = True) -> None:
    """Add a contact at ``t``; ``counted=False`` keeps the gap it ends out of the history.

    Contacts older than the last one (a batch received out of order) change nothing.
    """
    if t <= live.last_seen:
        live.first_seen = min(live.first_seen, t)
        return
    gap = t - live.last_seen
    if gap > params.heartbeat_interval + params.grace:
        live.gaps.append([live.last_seen, gap, 1.0 if counted else 0.0])
        live.resumed_at = t
    live.last_seen = t
    horizon = t - params.history
    while live.gaps and live.gaps[0][0] + live.gaps[0][1] < horizon:
        live.gaps.pop(0)


def silent_share(live: Liveness, duration: float, now: float, params: SilenceParams) -> float:
    """q(D): the smoothed share of observed time this probe was silent for ``duration`` or more.

    Only the history before the current gap counts: the silence being judged must not lower
    the bar for itself.
    """
    horizon = max(live.first_seen, now - params.history)
    observed = max(0.0, live.last_seen - horizon)
    silent = 0.0
    for start, length, counted in live.gaps:
        if start + length <= horizon:
            continue
        if not counted:
            observed -= min(length, start + length - horizon)
            continue
        silent += max(0.0, min(length, start + length - horizon) - duration)
    observed = max(0.0, observed)
    prior = params.prior_weight
    return (silent + prior * params.prior_miss_rate) / (observed + prior)


@dataclass(frozen=True, slots=True)
class Member:
    """A probe of the group under test."""

    probe_id: str
    asn: str
    live: Liveness


@dataclass(frozen=True, slots=True)
class Finding:
    probes: tuple[str, ...]  # the cluster: silent together
    asns: tuple[str, ...]
    onset: float  # latest last contact in the cluster: the network was up until then
    silent_for: float  # the cluster's shortest silence so far
    p_value: float
    persisted: bool  # the same cluster was already significant one bin earlier
    group_size: int


def _cluster(silent: list[tuple[float, Member]], spread: float) -> list[tuple[float, Member]]:
    """The largest run of silences that began within ``spread`` (the latest on ties)."""
    silent.sort(key=lambda item: (item[0], item[1].probe_id))
    best: list[tuple[float, Member]] = []
    low = 0
    for high in range(len(silent)):
        while silent[high][0] - silent[low][0] > spread:
            low += 1
        if high - low + 1 >= len(best):
            best = silent[low:high + 1]
    return best


def _tail(members: Sequence[Member], k: int, duration: float, now: float,
          params: SilenceParams) -> float:
    shares = [silent_share(m.live, duration, now, params) for m in members]
    return poisson_binomial_tail(shares, k)


def evaluate_group(members: Sequence[Member], now: float, blind_until: float,
               params: SilenceParams, floor: int) -> Finding | None:
    """Test one group (an ASN or a country) at ``now``; None when nothing is significant.

    ``blind_until`` is when the collector itself started listening: silence before that is not
    the probes' (a probe last heard earlier counts as heard then).
    """
    minimum = params.heartbeat_interval + params.grace
    silent = []
    for member in members:
        last = max(member.live.last_seen, blind_until)
        if now - last >= minimum:
            silent.append((last, member))
    if len(silent) < floor:
        return None
    cluster = _cluster(silent, params.onset_spread)
    if len(cluster) < floor:
        return None
    onset = cluster[-1][0]
    duration = now - onset
    p_value = _tail(members, len(cluster), duration, now, params)
    if p_value >= params.alpha:
        return None
    earlier = duration - params.bin
    persisted = earlier >= minimum and \
        _tail(members, len(cluster), earlier, now, params) < params.alpha
    probes = tuple(sorted(m.probe_id for _, m in cluster))
    asns = tuple(sorted({m.asn for _, m in cluster}))
    return Finding(probes=probes, asns=asns, onset=onset, silent_for=duration,
                   p_value=p_value, persisted=persisted, group_size=len(members))


@dataclass(slots=True)
class GroupState:
    """Heartbeat-silence state of one group (an ASN, or a whole country)."""

    onset: float | None = None
    probes: list[str] = field(default_factory=list)
    asns: list[str] = field(default_factory=list)
    level: int = NONE
    not_firing_since: float | None = None

    def to_state(self) -> dict[str, object]:
        return {"onset": self.onset, "probes": self.probes, "asns": self.asns,
                "level": self.level, "not_firing_since": self.not_firing_since}

    @classmethod
    def from_state(cls, data: object) -> GroupState:
        d = record(data, ("onset", "probes", "asns", "level", "not_firing_since"))
        return cls(maybe_number(d["onset"]), texts(d["probes"]), texts(d["asns"]),
                   integer(d["level"]), maybe_number(d["not_firing_since"]))


class SilenceDetector(Detector):
    """Heartbeat silence per ASN (``"cc|asn"``) and per country (``"cc|*"``), at every
    evaluation: shutdowns seen as probes going quiet together."""

    name = "silence"
    state_version = 1
    legacy_table = "groups"

    def __init__(self, config: DetectionConfig) -> None:
        super().__init__(config)
        self.groups: dict[str, GroupState] = {}

    @staticmethod
    def shape(config: DetectionConfig) -> Mapping[str, Any]:
        return {"silence": dataclasses.asdict(config.silence),
                "tiers": dataclasses.asdict(config.tiers)}

    def silent_probes(self) -> set[str]:
        return {p for g in self.groups.values() if g.onset is not None for p in g.probes}

    def judge_time(self, fleet: FleetView) -> list[Signal]:
        config = self.config.silence
        now = fleet.now
        horizon = now - config.active_window
        firing = self.silent_probes()
        members: dict[str, list[Member]] = defaultdict(list)
        for probe_id, probe in fleet.probes.items():
            if probe.live.last_seen < horizon and probe_id not in firing:
                continue
            member = Member(probe_id, probe.asn, probe.live)
            members[f"{probe.cc}|{probe.asn}"].append(member)
            members[f"{probe.cc}|*"].append(member)
        signals = []
        for key in sorted(set(members) | {k for k, g in self.groups.items()
                                          if g.onset is not None}):
            group_members = members.get(key, [])
            finding = evaluate_group(group_members, now, fleet.blind_until, config,
                                     self.config.tiers.floor)
            state = self.groups.setdefault(key, GroupState())
            signal = self._signal(key, state, finding, group_members, fleet)
            if signal is not None:
                signals.append(signal)
            if state.onset is None and finding is None:
                self.groups.pop(key, None)
        return signals

    def _signal(self, key: str, state: GroupState, finding: Finding | None,
                group_members: list[Member], fleet: FleetView) -> Signal | None:
        cc, _, asn_text = key.partition("|")
        asn = None if asn_text == "*" else asn_text
        config = self.config.silence
        now = fleet.now
        if finding is not None:
            probes, asns = list(finding.probes), list(finding.asns)
            if asn is None:
                probes, asns = self._country_members(finding, fleet, cc)
                if len(probes) < self.config.tiers.floor:
                    finding = None
        if finding is None:
            if state.onset is None:
                return None
            if state.not_firing_since is None:
                state.not_firing_since = now
            if now - state.not_firing_since < self.config.tiers.exit_bins * config.bin:
                return Signal(kind=SHUTDOWN, detector=self.name, cc=cc, asn=asn, level=NONE,
                              target=None, at=now, asns=tuple(state.asns),
                              probes=tuple(state.probes))
            returns = [probe.live.resumed_at for p in state.probes
                       if (probe := fleet.probes.get(p))
                       and probe.live.resumed_at is not None
                       and state.onset <= probe.live.resumed_at <= state.not_firing_since]
            recovered_at = max(returns) if returns else state.not_firing_since
            signal = Signal(kind=SHUTDOWN, detector=self.name, cc=cc, asn=asn, level=NONE,
                            target=None, at=now, recovered_at=recovered_at,
                            asns=tuple(state.asns), probes=tuple(state.probes))
            self.groups[key] = GroupState()
            return signal
        size = len(group_members)
        level = LIKELY if finding.persisted and \
            len(probes) >= self.config.tiers.likely_probes(size) else SUSPECTED
        if state.onset is None:
            state.onset = finding.onset
        state.probes = sorted(set(state.probes) | set(probes))
        state.asns = sorted(set(state.asns) | set(asns))
        state.level = max(state.level, level)
        state.not_firing_since = None
        return Signal(kind=SHUTDOWN, detector=self.name, cc=cc, asn=asn, level=level,
                      target=None, at=now, onset=state.onset, asns=tuple(state.asns),
                      probes=tuple(state.probes),
                      stats={"p_value": float(f"{finding.p_value:.3g}"),
                             "silent": len(finding.probes), "group": size,
                             "silent_for": round(finding.silent_for)})

    @staticmethod
    def _country_members(finding: Finding, fleet: FleetView, cc: str,
                         ) -> tuple[list[str], list[str]]:
        """A country-level cluster names only the ASNs where at least half the probes are in
        it, so one stray silent probe elsewhere does not widen an ASN outage to two networks."""
        by_asn: dict[str, list[str]] = defaultdict(list)
        for probe_id in finding.probes:
            probe = fleet.probes[probe_id]
            if probe.asn:
                by_asn[probe.asn].append(probe_id)
        probes: list[str] = []
        asns: list[str] = []
        for asn, ids in sorted(by_asn.items()):
            if len(ids) >= math.ceil(0.5 * max(1, fleet.active.get((cc, asn), len(ids)))):
                probes.extend(ids)
                asns.append(asn)
        return sorted(probes), asns

    def to_state(self) -> dict[str, Any]:
        return {"version": self.state_version,
                "series": {k: g.to_state() for k, g in self.groups.items()}}

    def load_state(self, data: Mapping[str, Any]) -> None:
        self.groups = load_series(data, GroupState.from_state)
