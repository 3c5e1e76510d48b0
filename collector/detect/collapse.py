"""All-target collapse: a network where the probes fail (nearly) everything at once.

Method. In each bin a reporting probe of an ASN has *collapsed* when its connectivity ladder
said offline, or when it tried at least ``min_targets`` targets and its own attempts failed for
at least ``probe_failed_share`` of them (canaries and co-hosted baselines included, which is
what separates a shutdown from a block list). The ASN's bin is hot when at least
``TierParams.floor`` probes and ``network_share`` of its reporting probes collapsed, clean when
at most ``exit_share`` did. ``likely`` needs ``persistence`` hot bins and
``TierParams.likely_probes`` distinct collapsed probes over the run; ``suspected`` one hot bin.

This catches shutdowns that heartbeat silence cannot see: an international cut that still lets
probes reach a domestic or whitelisted collector, or a network so degraded that heartbeats pass
and nothing else does. A single broken probe never makes a hot bin (the floor), and a probe
that fails everything is unhealthy for block detection, so it raises nothing there either.

Sources: ref §6.2 (classify: gateway/ISP up but foreign down = international cut; national
shutdowns are one event), ref §6.5 (canaries, hysteresis). Assumptions: one call per (ASN, bin)
in time order; ``active_probes`` is the ASN's number of probes heard from recently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.detect.detector import Detector, SettledBin, forget_if_idle, load_series
from collector.detect.model import LIKELY, NONE, SUSPECTED, Signal
from collector.detect.params import CollapseParams, DetectionConfig, TierParams
from collector.detect.saved import record, texts
from collector.detect.streak import Streak
from collector.events.kinds import SHUTDOWN


@dataclass(frozen=True, slots=True)
class CollapseBin:
    start: float
    end: float
    reporting: tuple[str, ...]
    collapsed: tuple[str, ...]
    offline_ladders: int  # collapsed probes whose ladder said offline


@dataclass(slots=True)
class CollapseSeries:
    streak: Streak = field(default_factory=Streak)
    probes: list[str] = field(default_factory=list)  # collapsed during the run

    def to_state(self) -> dict[str, object]:
        return {"streak": self.streak.to_state(), "probes": self.probes}

    @classmethod
    def from_state(cls, data: object) -> CollapseSeries:
        d = record(data, ("streak", "probes"))
        return cls(Streak.from_state(d["streak"]), texts(d["probes"]))


def probe_collapsed(tried: int, failed: int, ladder_offline: bool,
                    params: CollapseParams) -> bool:
    """Whether one probe's bin shows a collapse of its own connectivity."""
    if ladder_offline:
        return True
    return tried >= params.min_targets and failed >= params.probe_failed_share * tried


def step(series: CollapseSeries, b: CollapseBin, cc: str, asn: str, active_probes: int,
         params: CollapseParams, tiers: TierParams) -> Signal:
    """Advance ``series`` by one settled bin and say what it now shows."""
    if b.reporting:
        share = len(b.collapsed) / len(b.reporting)
        hot = len(b.collapsed) >= tiers.floor and share >= params.network_share
        clean = share <= params.exit_share
        if series.streak.step(b.start, hot, clean):
            series.probes = []
        if series.streak.run_start is not None:
            series.probes = sorted(set(series.probes) | set(b.collapsed))
    streak = series.streak
    level = NONE
    if streak.run_start is not None and streak.hot_bins:
        if streak.hot_bins >= tiers.persistence and \
                len(series.probes) >= tiers.likely_probes(active_probes):
            level = LIKELY
        elif len(series.probes) >= tiers.floor:
            level = SUSPECTED
    return Signal(
        kind=SHUTDOWN, detector="collapse", cc=cc, asn=asn, target=None, level=level,
        at=b.end, onset=streak.run_start if level else None,
        recovered_at=streak.recovered(tiers.exit_bins), asns=(asn,),
        probes=tuple(series.probes),
        stats={"collapsed": len(b.collapsed), "reporting": len(b.reporting),
               "offline_ladders": b.offline_ladders, "bins": streak.hot_bins})


class CollapseDetector(Detector):
    """All-target collapse per network, judged in every settled bin (first in the registry: a
    collapsed network contributes nothing to the per-target detectors in that bin)."""

    name = "collapse"
    state_version = 1
    legacy_table = "collapses"

    def __init__(self, config: DetectionConfig) -> None:
        super().__init__(config)
        self.series: dict[str, CollapseSeries] = {}

    @staticmethod
    def shape(config: DetectionConfig) -> Mapping[str, Any]:
        return {"bin": config.block.bin, "collapse": dataclasses.asdict(config.collapse),
                "tiers": dataclasses.asdict(config.tiers)}

    def judge_bin(self, b: SettledBin) -> list[Signal]:
        config = self.config
        signals = []
        for (cc, asn), probe_ids in sorted(b.networks().items()):
            if (cc, asn) in b.partial:
                continue  # judged already: one probe's late backlog is no network verdict
            collapsed = tuple(sorted(
                p for p in probe_ids if probe_collapsed(
                    b.probes[p].tried, b.probes[p].failed, b.probes[p].ladder_offline,
                    config.collapse)))
            key = f"{cc}|{asn}"
            series = self.series.get(key)
            if series is None and not collapsed:
                continue
            series = self.series.setdefault(key, CollapseSeries())
            the_bin = CollapseBin(
                start=b.start, end=b.end, reporting=tuple(sorted(probe_ids)),
                collapsed=collapsed,
                offline_ladders=sum(b.probes[p].ladder_offline for p in collapsed))
            signal = step(series, the_bin, cc, asn, b.active.get((cc, asn), 0),
                          config.collapse, config.tiers)
            signals.append(signal)
            if len(collapsed) >= config.tiers.floor and \
                    len(collapsed) >= config.collapse.network_share * len(probe_ids):
                b.collapsed.add((cc, asn))
            forget_if_idle(self.series, key, series.streak.run_start, signal, b.is_open)
        return signals

    def to_state(self) -> dict[str, Any]:
        return {"version": self.state_version,
                "series": {k: s.to_state() for k, s in self.series.items()}}

    def load_state(self, data: Mapping[str, Any]) -> None:
        self.series = load_series(data, CollapseSeries.from_state)
