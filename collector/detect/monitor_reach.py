"""The monitor blocked from a network: probes that reach the collector only by a detour.

A censor's first move may be to block the monitor itself. Probes fail over by themselves
(``probe.daemon.endpoints``, ``probe.nettests.control_client``), so their reports keep coming,
and their heartbeats say how: ``collector_fallback`` (the collector answered only at an
endpoint after the first of the probe's list) and ``controls_blocked`` (no control vantage
answered at all). That censorship of the monitor is a finding of its own kind
(``monitor_blocked``), for researchers: the network is up (its probes report), the sites may be
fine, but the monitor's first address or its controls are cut from there.

Input: ``PathReading``, one per heartbeat that says either field (older probes say nothing and
count for nothing). Per probe the detector keeps its latest reading.

Rule (``ReachParams``), at every evaluation, per network (cc, asn) of the probes with a reading
no older than ``window``: a probe is *cut* when it reports a fallback while some probe of
another network reached the first endpoint directly in the same window, or reports every
control blocked while some probe of another network reached a control. The comparison with
other networks is what tells a block from an outage: when the first endpoint (or every
control) is down for everyone, that is the monitor's own outage (``monitor.py``), not this.
The network fires when its cut probes are at least ``min_share`` of its probes with readings;
``likely`` with at least ``tiers.floor`` cut probes, ``suspected`` with fewer. It recovers after
``exit_after`` without firing.

Pure: no I/O, no clock; state saved as a dict.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from collector.detect.detector import Detector, FleetView
from collector.detect.model import LIKELY, NONE, SUSPECTED, Signal
from collector.detect.params import DetectionConfig
from collector.detect.saved import mapping, maybe_number, record, texts
from collector.events.kinds import MONITOR_BLOCKED


@dataclass(frozen=True, slots=True)
class PathReading:
    """What one heartbeat said about the probe's way to the monitor (None: not said)."""

    probe_id: str
    t: float
    fallback: bool | None
    controls_blocked: bool | None
    endpoint: str | None = None  # the collector endpoint's name (never an address)

    def to_state(self) -> list[object]:
        return [self.t, self.fallback, self.controls_blocked, self.endpoint]


def reading(body: str, probe_id: str, t: float) -> PathReading | None:
    """The reading of a stored heartbeat body, or None when it says neither field."""
    try:
        document = json.loads(body)
    except ValueError:
        return None
    if not isinstance(document, dict):
        return None
    fallback, blocked = document.get("collector_fallback"), document.get("controls_blocked")
    fallback = fallback if isinstance(fallback, bool) else None
    blocked = blocked if isinstance(blocked, bool) else None
    if fallback is None and blocked is None:
        return None
    endpoint = document.get("collector_endpoint")
    return PathReading(probe_id, t, fallback, blocked,
                       endpoint if isinstance(endpoint, str) and len(endpoint) <= 40 else None)


@dataclass(slots=True)
class NetworkState:
    onset: float | None = None
    probes: list[str] = field(default_factory=list)
    not_firing_since: float | None = None

    def to_state(self) -> dict[str, object]:
        return {"onset": self.onset, "probes": self.probes,
                "not_firing_since": self.not_firing_since}

    @classmethod
    def from_state(cls, data: object) -> NetworkState:
        d = record(data, ("onset", "probes", "not_firing_since"))
        return cls(maybe_number(d["onset"]), texts(d["probes"]),
                   maybe_number(d["not_firing_since"]))


class MonitorReachDetector(Detector):
    name = "monitor_reach"

    def __init__(self, config: DetectionConfig) -> None:
        super().__init__(config)
        self.latest: dict[str, PathReading] = {}
        self.networks: dict[str, NetworkState] = {}

    def observe(self, observation: object) -> bool:
        if not isinstance(observation, PathReading):
            return False
        kept = self.latest.get(observation.probe_id)
        if kept is None or observation.t >= kept.t:
            self.latest[observation.probe_id] = observation
        return True

    def judge_time(self, fleet: FleetView) -> list[Signal]:
        params = self.config.reach
        horizon = fleet.now - params.window
        for probe_id in [p for p, r in self.latest.items() if r.t < horizon]:
            del self.latest[probe_id]  # stale: the state stays as small as the fleet
        by_network: dict[str, list[PathReading]] = defaultdict(list)
        for probe_id, r in self.latest.items():
            probe = fleet.probes.get(probe_id)
            if probe is not None:
                by_network[f"{probe.cc}|{probe.asn}"].append(r)
        signals = []
        for key in sorted(set(by_network) | {k for k, s in self.networks.items()
                                             if s.onset is not None}):
            readings = by_network.get(key, [])
            others = [r for k, rs in by_network.items() if k != key for r in rs]
            first_ok = any(r.fallback is False for r in others)
            control_ok = any(r.controls_blocked is False for r in others)
            cut = [r for r in readings if (r.fallback and first_ok)
                   or (r.controls_blocked and control_ok)]
            firing = bool(cut) and len(cut) >= params.min_share * len(readings)
            signal = self._signal(key, cut, firing, fleet.now)
            if signal is not None:
                signals.append(signal)
        return signals

    def _signal(self, key: str, cut: list[PathReading], firing: bool,
                now: float) -> Signal | None:
        cc, _, asn = key.partition("|")
        state = self.networks.setdefault(key, NetworkState())
        if not firing:
            if state.onset is None:
                self.networks.pop(key, None)
                return None
            if state.not_firing_since is None:
                state.not_firing_since = now
            recovered = now - state.not_firing_since >= self.config.reach.exit_after
            signal = Signal(kind=MONITOR_BLOCKED, detector=self.name, cc=cc, asn=asn,
                            target=None, level=NONE, at=now, asns=(asn,),
                            probes=tuple(state.probes),
                            recovered_at=state.not_firing_since if recovered else None)
            if recovered:
                self.networks.pop(key, None)
            return signal
        if state.onset is None:
            state.onset = min(r.t for r in cut)
        state.not_firing_since = None
        state.probes = sorted({*state.probes, *(r.probe_id for r in cut)})
        mechanisms = sorted({"collector_fallback" for r in cut if r.fallback}
                            | {"controls_blocked" for r in cut if r.controls_blocked})
        level = LIKELY if len(cut) >= self.config.tiers.floor else SUSPECTED
        return Signal(kind=MONITOR_BLOCKED, detector=self.name, cc=cc, asn=asn, target=None,
                      level=level, at=now, onset=state.onset, asns=(asn,),
                      probes=tuple(sorted(r.probe_id for r in cut)),
                      mechanism="+".join(mechanisms),
                      stats={"probes_cut": len(cut),
                             "endpoints": sorted({r.endpoint for r in cut if r.endpoint})})

    def to_state(self) -> dict[str, Any]:
        return {"version": self.state_version,
                "latest": {p: r.to_state() for p, r in self.latest.items()},
                "networks": {k: s.to_state() for k, s in self.networks.items()}}

    def load_state(self, data: Mapping[str, Any]) -> None:
        self.latest = {}
        for probe_id, saved in mapping(data.get("latest", {})).items():
            if isinstance(saved, list) and len(saved) == 4 and \
                    isinstance(saved[0], int | float):
                fallback, blocked, endpoint = saved[1], saved[2], saved[3]
                self.latest[str(probe_id)] = PathReading(
                    str(probe_id), float(saved[0]),
                    fallback if isinstance(fallback, bool) else None,
                    blocked if isinstance(blocked, bool) else None,
                    endpoint if isinstance(endpoint, str) else None)
        self.networks = {str(k): NetworkState.from_state(v)
                         for k, v in mapping(data.get("networks", {})).items()}
