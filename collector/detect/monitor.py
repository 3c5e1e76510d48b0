"""The monitor's own outages: when Kuzot itself could not observe, said so as such.

The collector is the probes' upload target, usually their control (test helper) and the last
rung of their ladder, so its own downtime reaches the probes' records as failures. Those
failures are kept out of the evidence (``extract``: a failure the control could not check is no
failure); this module recognises the outage itself so researchers see why there is a gap, and
so nothing is mistaken for a shutdown:

* ``collector_down``: no collector process was running. Every process stamps the store while it
  runs (``alive``); a process that starts and finds the last stamp older than ``grace`` knows
  the monitor was down from that stamp until its own start. With several collectors on one
  database, one of them restarting is no outage (the others kept the stamp fresh).
* ``control_unreachable``: in a bin, at least ``min_probes`` probes on at least two networks
  lost the control for at least half of their runs, and they are at least ``share`` of the
  probes that reported: the probes could measure but the control answered nobody. (A national
  cut with the control abroad also loses the control, but only in that country; with probes in
  one network only, the two cannot be told apart and nothing is said. Either way, the runs are
  no evidence, and the ladder and heartbeat silence still judge the network.)

Pure: no I/O, no clock. An outage becomes an event of kind ``monitor_outage`` (design §4's
shape, ``cc`` "ZZ": every country), ``tier`` "confirmed" (the monitor knows its own state).
The notifier never sends it and the alerting series leave it out: it is for researchers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from collector.detect.model import Run, iso
from collector.events.kinds import MONITOR_OUTAGE

KIND = MONITOR_OUTAGE
COLLECTOR_DOWN = "collector_down"
CONTROL_UNREACHABLE = "control_unreachable"
NOTES = {
    COLLECTOR_DOWN: "No collector was running: probes could not upload, and measurements they "
                    "made meanwhile without a control are not evidence of anything.",
    CONTROL_UNREACHABLE: "The control answered no probe in any network: failures measured "
                         "meanwhile are not evidence of blocking or of a shutdown.",
}


def outage_event(cause: str, start: float, end: float | None, now: float,
                 probes: int = 0, stats: dict[str, Any] | None = None) -> dict[str, Any]:
    """The event JSON (design §4) of one outage of the monitor."""
    return {
        "id": f"monitor-{cause}-{iso(start).replace(':', '').replace('-', '')}",
        "kind": KIND, "tier": "confirmed", "status": "open" if end is None else "closed",
        "start": iso(start), "end": None if end is None else iso(end),
        "updated_at": iso(now), "cc": "ZZ", "asns": [], "targets": [], "mechanism": cause,
        "probes": probes, "evidence": {"cause": cause, "note": NOTES[cause], **(stats or {})},
    }


def collector_downtime(last_alive: float | None, started_at: float, grace: float,
                       ) -> dict[str, Any] | None:
    """The ``collector_down`` outage a starting process infers from the last stamp, if any."""
    if last_alive is None or started_at - last_alive <= grace:
        return None
    return outage_event(COLLECTOR_DOWN, last_alive, started_at, started_at,
                        stats={"down_seconds": round(started_at - last_alive)})


@dataclass(slots=True)
class _Bin:
    runs: dict[str, list[int]] = field(default_factory=dict)  # asn|probe -> [runs, lost]


@dataclass(slots=True)
class ControlWatch:
    """Bins of control failures across all probes; says when the control answered nobody."""

    bin: float
    settle: float
    share: float = 0.8
    min_probes: int = 2
    bins: dict[int, _Bin] = field(default_factory=dict)
    last_settled: int | None = None
    onset: float | None = None  # start of the open outage
    peak: int = 0  # most probes that lost the control in one bin of it
    covered: list[list[float]] = field(default_factory=list)  # known collector downtimes

    def cover(self, start: float, end: float) -> None:
        """The collector was down over [start, end]: its bins are that outage, told already."""
        self.covered.append([start, end])

    def add(self, run: Run) -> None:
        index = math.floor(run.t / self.bin)
        if self.last_settled is not None and index <= self.last_settled:
            return  # late: its bin is judged (the outage it belongs to is already told)
        counts = self.bins.setdefault(index, _Bin()).runs.setdefault(
            f"{run.asn}|{run.probe_id}", [0, 0])
        counts[0] += 1
        counts[1] += run.control_failed

    def evaluate(self, now: float) -> list[dict[str, Any]]:
        """Settle complete bins; returns the outage events that opened, grew or closed."""
        changed: dict[str, dict[str, Any]] = {}
        for index in sorted(self.bins):
            if (index + 1) * self.bin + self.settle > now:
                break
            probes = self.bins.pop(index).runs
            self.last_settled = index
            lost_by = [key for key, (runs, failed) in probes.items() if failed * 2 >= runs]
            lost = len(lost_by)
            networks = {key.partition("|")[0] for key in lost_by}
            start = index * self.bin
            if any(a < start + self.bin and start < b for a, b in self.covered):
                continue
            if lost >= self.min_probes and len(networks) >= 2 and \
                    lost >= self.share * len(probes):
                if self.onset is None:
                    self.onset, self.peak = start, 0
                self.peak = max(self.peak, lost)
                event = outage_event(CONTROL_UNREACHABLE, self.onset, None, now, self.peak)
            elif self.onset is not None:
                event = outage_event(CONTROL_UNREACHABLE, self.onset, start, now, self.peak)
                self.onset, self.peak = None, 0
            else:
                continue
            changed[event["id"]] = event
        if self.last_settled is not None:
            horizon = self.last_settled * self.bin
            self.covered = [c for c in self.covered if c[1] >= horizon]
        return list(changed.values())

    def to_state(self) -> dict[str, Any]:
        return {"bins": {str(k): b.runs for k, b in self.bins.items()},
                "last_settled": self.last_settled, "onset": self.onset, "peak": self.peak,
                "covered": self.covered}

    def load_state(self, data: dict[str, Any]) -> None:
        self.bins = {int(k): _Bin({p: [int(n), int(f)] for p, (n, f) in v.items()})
                     for k, v in data["bins"].items()}
        self.last_settled = data["last_settled"]
        self.onset = data["onset"]
        self.peak = int(data["peak"])
        self.covered = [[float(a), float(b)] for a, b in data.get("covered", [])]
