"""Records shared by the detectors: observations in, signals between, events out.

Everything here is a plain value: no I/O, no clock. Times are float seconds since the Unix
epoch (UTC); they become ISO 8601 strings only at the edge, in ``Event.to_json``.

* Observations (``Run``, ``LadderReading``) are what ``extract`` makes of a stored measurement.
* A ``Signal`` is one detector's statement about one series (an ASN, an (ASN, target) pair, a
  country) at one moment: its level and, when it has recovered, since when.
* An ``Event`` is what the tracker makes of signals: the contract of ``GET /api/v1/events``
  (design §4), one object per incident, updated in place as it grows and closes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from collector.events.kinds import DetectedKind

Kind = DetectedKind  # the kinds detection makes (``collector.events.kinds``)
Outcome = Literal["ok", "blocked", "down", "throttled", "inconclusive"]

# Evidence levels. A signal carries NONE, SUSPECTED or LIKELY; CONFIRMED is an event-level
# judgement (likely plus a fingerprint or a second network), made by the tracker.
NONE, SUSPECTED, LIKELY, CONFIRMED = 0, 1, 2, 3
TIERS = {SUSPECTED: "suspected", LIKELY: "likely", CONFIRMED: "confirmed"}
TIER_LEVELS = {name: level for level, name in TIERS.items()}

# Causes of a connectivity loss as the probe's ladder shows them (see ``ladder.classify``).
LADDER_CAUSES = ("online", "international_cut", "isp_outage", "local_outage", "unknown")


def iso(t: float) -> str:
    """ISO 8601 UTC with a ``Z``, to the second: the events API's time format."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    """Seconds from ``YYYY-MM-DD HH:MM:SS`` (OONI) or ISO 8601 (``T``, optional ``Z``/offset).

    Raises ValueError for anything else. A time without an offset is UTC.
    """
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


@dataclass(frozen=True, slots=True)
class Run:
    """One measurement of one target by one probe, reduced to what the detectors use.

    ``outcome`` is the probe's verdict. ``fingerprint`` is ``blockpage:<name>`` or
    ``issuer:<name>`` when the measurement carries one. ``handshake`` is the target's TLS
    handshake time in seconds; ``slowdown`` the target/baseline time ratio when the measurement
    itself compared the target with a co-hosted baseline. ``failed`` is true when the probe's own
    attempt failed while the control answered, the input of all-target collapse.
    ``control_failed`` is true when the control (often the collector itself) could not be
    consulted: such a run that is not ``ok`` is no evidence of anything, and collapse does not
    count it as a try.
    """

    probe_id: str
    cc: str
    asn: str
    target: str
    t: float
    outcome: Outcome
    layer: str | None = None
    mechanism: str | None = None
    fingerprint: str | None = None
    handshake: float | None = None
    slowdown: float | None = None
    failed: bool = False
    control_failed: bool = False


@dataclass(frozen=True, slots=True)
class LadderReading:
    """One climb of the probe's connectivity ladder (test ``connectivity``).

    Probes keep climbing it during a blackout and upload the readings afterwards with their
    original timestamps, which is what lets an event's true start be backfilled.
    """

    probe_id: str
    cc: str
    asn: str
    t: float
    online: bool
    cause: str  # one of LADDER_CAUSES


Observation = Run | LadderReading


@dataclass(frozen=True, slots=True)
class Signal:
    """One detector's current statement about one series.

    ``level`` is NONE, SUSPECTED or LIKELY by that detector's own rules. ``onset`` is when the
    anomaly began (set when level > NONE). ``recovered_at`` is set once the exit rule holds
    (hysteresis), and is when the recovery began. ``at`` is the time the statement is about.
    """

    kind: Kind
    detector: str
    cc: str
    asn: str | None
    target: str | None
    level: int
    at: float
    onset: float | None = None
    recovered_at: float | None = None
    asns: tuple[str, ...] = ()
    probes: tuple[str, ...] = ()
    mechanism: str | None = None
    layer: str | None = None
    fingerprint: str | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The series this signal is about; one series is one member of at most one event."""
        return f"{self.detector}|{self.cc}|{self.asn or '*'}|{self.target or '*'}"


@dataclass(frozen=True, slots=True)
class Event:
    """An incident as the events API serves it (design §4, a contract)."""

    id: str
    kind: Kind
    tier: str
    status: Literal["open", "closed"]
    start: float
    end: float | None
    updated_at: float
    cc: str
    asns: tuple[str, ...]
    targets: tuple[str, ...]
    mechanism: str | None
    probes: int
    evidence: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "tier": self.tier, "status": self.status,
            "start": iso(self.start), "end": None if self.end is None else iso(self.end),
            "updated_at": iso(self.updated_at), "cc": self.cc, "asns": list(self.asns),
            "targets": list(self.targets), "mechanism": self.mechanism, "probes": self.probes,
            "evidence": dict(self.evidence),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Event:
        return cls(
            id=data["id"], kind=data["kind"], tier=data["tier"], status=data["status"],
            start=parse_time(data["start"]),
            end=None if data["end"] is None else parse_time(data["end"]),
            updated_at=parse_time(data["updated_at"]), cc=data["cc"],
            asns=tuple(data["asns"]), targets=tuple(data["targets"]),
            mechanism=data["mechanism"], probes=int(data["probes"]),
            evidence=dict(data["evidence"]),
        )
