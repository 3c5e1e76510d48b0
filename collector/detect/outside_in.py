"""Outside-in reachability as a detector: it corroborates shutdowns the probes themselves saw.

Input: ``OutsideReading``, one per network and outside-in round: how many of the network's /24
blocks were ``up`` (Trinocular belief, ``collector.outside.belief``; counted by
``outside.blocks_up``). Per network the detector keeps the recent history of that count
(inpainted, so an outage never trains it) and the latest verdict of ``outside.judge``
(IODA's rule: below 0.8 of the recent median a warning, below 0.5 critical).

Output: no signal of its own. An outside-in prober is new to Kuzot and its false alarms are not
measured yet, so it does not open events; it corroborates. Through the tracker's hook
(``Detector.corroborations``), a shutdown candidate that is only ``suspected`` (heartbeat
silence or collapse on too few probes, say) becomes ``likely`` when the latest verdict of one of
its networks is ``critical`` and was made no earlier than ``silence.join_window`` before the
candidate began: two independent vantage points, the volunteers' inside and unanswered probes
from outside, agree that the network is dark. The tier rule applies after it and counts the
members likely by their own rules, so corroboration alone never makes an event ``confirmed``.

Parameters: ``detection.outside`` (``outside.OutsideParams``). Pure; state saved as a dict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.detect import outside
from collector.detect.detector import Detector, load_series
from collector.detect.model import LIKELY, SUSPECTED
from collector.detect.params import DetectionConfig
from collector.detect.saved import maybe_number, numbers, record
from collector.detect.tracker import Candidate, Corroboration
from collector.events.kinds import SHUTDOWN

MAX_HISTORY = 7 * 24 * 6  # a week of 10-minute rounds: IODA's 7-day median


@dataclass(frozen=True, slots=True)
class OutsideReading:
    """One outside-in round of one network: its /24 blocks in state ``up``."""

    cc: str
    asn: str
    t: float
    blocks_up: int


@dataclass(slots=True)
class NetworkView:
    """What outside-in probing saw of one network: its history and latest verdict."""

    history: list[float] = field(default_factory=list)
    level: str = outside.Level.INSUFFICIENT.value
    at: float | None = None

    def to_state(self) -> dict[str, object]:
        return {"history": self.history, "level": self.level, "at": self.at}

    @classmethod
    def from_state(cls, data: object) -> NetworkView:
        d = record(data, ("history", "level", "at"))
        return cls(numbers(d["history"]), outside.Level(d["level"]).value,
                   maybe_number(d["at"]))


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
        verdict = outside.judge(observation.blocks_up, view.history, self.config.outside)
        view.history = [*view.history, outside.to_history(verdict, self.config.outside)]
        view.history = view.history[-MAX_HISTORY:]
        view.level, view.at = verdict.level.value, observation.t
        return True

    def corroborations(self) -> Sequence[Corroboration]:
        return (self.corroborate,)

    def corroborate(self, candidate: Candidate, level: int) -> int:
        """Suspected shutdown + the network dark from outside = likely."""
        if candidate.kind != SHUTDOWN or level != SUSPECTED:
            return level
        since = candidate.start - self.config.silence.join_window
        for asn in sorted({a for m in candidate.members for a in m.asns}):
            view = self.networks.get(f"{candidate.cc}|{asn}")
            if view is not None and view.level == outside.Level.CRITICAL and \
                    view.at is not None and view.at >= since:
                return LIKELY
        return level

    def to_state(self) -> dict[str, Any]:
        return {"version": self.state_version,
                "series": {k: v.to_state() for k, v in self.networks.items()}}

    def load_state(self, data: Mapping[str, Any]) -> None:
        self.networks = load_series(data, NetworkView.from_state)
