"""Outside-in reachability as a detector: shutdowns seen from outside, alone or with the probes.

Input: ``OutsideReading``, one per network and outside-in round: how many of the network's /24
blocks were ``up`` (Trinocular belief, ``collector.outside.belief``; counted by
``outside.blocks_up``) out of how many are probed. Per network the detector keeps the recent
history of that count (inpainted, so an outage never trains it), the latest verdict of
``outside.judge`` (IODA's rule: below 0.8 of the recent median a warning, below 0.5 critical)
and how many rounds in a row were critical.

Output, three ways:

* Its own shutdown member (``judge_time``): a network critical for ``min_rounds`` consecutive
  readings (a round, and the prober's confirmation of a network that turned critical, which
  comes ``outside.confirm_after`` later as a reading of its own), whose probes inside are
  silent or absent (none heard from within a heartbeat and its grace), is a shutdown seen
  from outside (IODA counts a network whose blocks go dark from outside as an outage even
  with no probe there). Alone it is
  ``suspected``: the false alarms of an outside-in prober are not measured yet, and a route
  lost on the collector's own side darkens every network at once, so outside-in darkness alone
  never makes an event likely or confirmed. A network whose probes still talk is not dark,
  whatever the outside sees (ICMP and SYNs filtered upstream, say). The member ends at the
  first round that is not critical.
* Corroboration (the tracker's hook, ``Detector.corroborations``): an event with a member of
  the probes' own detectors (silence, collapse) on a network critical from outside no earlier
  than ``silence.join_window`` before the event began has two independent signals: the probes
  inside and unanswered probes from outside. A likely inside member makes it ``confirmed``; a
  merely suspected one makes it ``likely``.
* The event text (``event_extras``): every open shutdown carries in ``evidence.outside``, per
  network probed from outside, whether it is reachable from outside, its blocks up, blocks
  probed and usual count (the median); ``collector.events.sentences`` says it in words, so a
  volunteer-only silence on a network that answers from outside reads so.

Parameters: ``detection.outside`` (``outside.OutsideParams``). Pure; state saved as a dict.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.detect import outside
from collector.detect.detector import Detector, FleetView, load_series
from collector.detect.model import CONFIRMED, LIKELY, NONE, SUSPECTED, Signal
from collector.detect.params import DetectionConfig
from collector.detect.saved import maybe_number, numbers, record
from collector.detect.tracker import Candidate, Corroboration
from collector.events.kinds import SHUTDOWN

RESCALE = 1.25  # a history median above this many times the blocks probed is dropped
MAX_HISTORY = 7 * 24 * 12  # a week of 5-minute rounds (outside.round): IODA's 7-day median


@dataclass(frozen=True, slots=True)
class OutsideReading:
    """One outside-in round of one network: its /24 blocks in state ``up``."""

    cc: str
    asn: str
    t: float
    blocks_up: int
    blocks_total: int | None = None  # watched blocks probed (all states); None: unknown


@dataclass(slots=True)
class NetworkView:
    """What outside-in probing saw of one network: its history and latest verdict."""

    history: list[float] = field(default_factory=list)
    level: str = outside.Level.INSUFFICIENT.value
    at: float | None = None
    streak: int = 0  # consecutive critical rounds up to ``at``
    dark_since: float | None = None  # the first round of that streak
    up: float = 0.0
    total: int | None = None
    baseline: float | None = None

    def to_state(self) -> dict[str, object]:
        return {"history": self.history, "level": self.level, "at": self.at,
                "streak": self.streak, "dark_since": self.dark_since, "up": self.up,
                "total": self.total, "baseline": self.baseline}

    @classmethod
    def from_state(cls, data: object) -> NetworkView:
        d = record(data, ("history", "level", "at"))
        total = d.get("total")
        return cls(numbers(d["history"]), outside.Level(d["level"]).value,
                   maybe_number(d["at"]), int(d.get("streak", 0)),
                   maybe_number(d.get("dark_since")), float(d.get("up", 0.0)),
                   None if total is None else int(total), maybe_number(d.get("baseline")))

    @property
    def critical(self) -> bool:
        return self.level == outside.Level.CRITICAL

    def describe(self, asn: str) -> dict[str, Any]:
        """The network as seen from outside, for the event's evidence and its sentences."""
        return {"asn": asn, "reachable": not self.critical, "blocks_up": int(self.up),
                "blocks_total": self.total, "blocks_usual": self.baseline}


class OutsideDetector(Detector):
    name = "outside"
    state_version = 1

    def __init__(self, config: DetectionConfig) -> None:
        super().__init__(config)
        self.networks: dict[str, NetworkView] = {}

    @staticmethod
    def shape(config: DetectionConfig) -> Mapping[str, Any]:
        return {"outside": dataclasses.asdict(config.outside)}

    def observe(self, observation: object) -> bool:
        if not isinstance(observation, OutsideReading):
            return False
        view = self.networks.setdefault(f"{observation.cc}|{observation.asn}", NetworkView())
        if view.at is not None and observation.t <= view.at:
            return True  # a round older than the latest changes nothing
        total = observation.blocks_total
        if total is not None and view.history and \
                statistics.median(view.history) > RESCALE * max(1, total):
            # Learned on more blocks than are probed now (fewer watched per network, a shorter
            # block file, a history from before the watch sets): not comparable, start anew.
            view.history = []
        verdict = outside.judge(observation.blocks_up, view.history, self.config.outside)
        view.history = [*view.history, outside.to_history(verdict, self.config.outside)]
        view.history = view.history[-MAX_HISTORY:]
        view.level, view.at = verdict.level.value, observation.t
        view.up, view.total, view.baseline = (float(observation.blocks_up),
                                              observation.blocks_total, verdict.baseline)
        if verdict.level is outside.Level.CRITICAL:
            view.streak += 1
            view.dark_since = observation.t if view.streak == 1 else view.dark_since
        else:
            view.streak, view.dark_since = 0, None
        return True

    def _fresh(self, view: NetworkView, now: float) -> bool:
        """A verdict still speaks for the network: made within ``silence.join_window``."""
        return view.at is not None and view.at >= now - self.config.silence.join_window

    def judge_time(self, fleet: FleetView) -> list[Signal]:
        """Networks dark from outside for ``min_rounds`` rounds, their probes silent or absent."""
        signals = []
        heartbeat = self.config.silence.heartbeat_interval + self.config.silence.grace
        for key, view in sorted(self.networks.items()):
            cc, _, asn = key.partition("|")
            signal_key = f"{self.name}|{cc}|{asn}|*"
            stats = {"blocks_up": view.up, "blocks_total": view.total,
                     "blocks_usual": view.baseline}
            dark = view.streak >= self.config.outside.min_rounds and \
                view.dark_since is not None and self._fresh(view, fleet.now)
            if dark:
                # Probes inside that still talk (heard within a heartbeat and its grace) say the
                # network is up, whatever the outside sees.
                dark = not any(probe.cc == cc and probe.asn == asn
                               and probe.live.last_seen >= fleet.now - heartbeat
                               for probe in fleet.probes.values())
            if dark:
                assert view.dark_since is not None and view.at is not None
                signals.append(Signal(kind=SHUTDOWN, detector=self.name, cc=cc, asn=asn,
                                      target=None, level=SUSPECTED, at=view.at,
                                      onset=view.dark_since, asns=(asn,), stats=stats))
            elif fleet.is_open(signal_key) and view.at is not None:
                # Not critical any more, or the probes inside talk: the member ends now.
                signals.append(Signal(kind=SHUTDOWN, detector=self.name, cc=cc, asn=asn,
                                      target=None, level=NONE, at=view.at,
                                      recovered_at=view.at, asns=(asn,), stats=stats))
        return signals

    def event_extras(self, kind: str, cc: str, asns: Sequence[str],
                     now: float) -> dict[str, Any]:
        """What outside-in probing says of a shutdown's networks, for the event text."""
        if kind != SHUTDOWN:
            return {}
        seen = [view.describe(asn) for asn in sorted(asns)
                if (view := self.networks.get(f"{cc}|{asn}")) is not None
                and view.level != outside.Level.INSUFFICIENT and self._fresh(view, now)]
        return {"outside": seen} if seen else {}

    def corroborations(self) -> Sequence[Corroboration]:
        return (self.corroborate,)

    def corroborate(self, candidate: Candidate, level: int) -> int:
        """The probes inside + the network dark from outside: two independent signals agree.
        A likely inside member makes the event confirmed, a suspected one likely."""
        if candidate.kind != SHUTDOWN or level < SUSPECTED:
            return level
        since = candidate.start - self.config.silence.join_window
        best = level
        for member in candidate.members:
            if member.detector == self.name:
                continue  # the outside-in member itself is no second signal
            for asn in member.asns:
                view = self.networks.get(f"{candidate.cc}|{asn}")
                if view is not None and view.critical and \
                        view.at is not None and view.at >= since:
                    best = max(best, CONFIRMED if member.max_level >= LIKELY else LIKELY)
        return best

    def to_state(self) -> dict[str, Any]:
        return {"version": self.state_version,
                "series": {k: v.to_state() for k, v in self.networks.items()}}

    def load_state(self, data: Mapping[str, Any]) -> None:
        self.networks = load_series(data, NetworkView.from_state)
