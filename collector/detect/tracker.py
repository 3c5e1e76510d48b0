"""From signals to events: clustering, tiers, hysteresis, one object per incident.

A *member* is one series (``Signal.key``: a detector on an ASN, an (ASN, target) pair, or a
country) inside an event. Method:

* A series that starts signalling joins an open event of the same kind, country and cluster key
  when its onset is within the kind's window of the event's start (shutdowns: 30 min, ref §6.2;
  blocks and throttling: 2 h, ref §6.3), or, for a block, when the same target is already in
  the event from another ASN within ``national_window`` (6 h, ref §6.3). Otherwise it opens a
  new event. The cluster key is the shared mechanism: ``layer:mechanism`` for blocks,
  ``targeted:mechanism`` or ``generalized`` for throttling, one key for all shutdown detectors
  (silence, collapse) so a national shutdown seen both ways is one event. This is CenDTect's
  lesson (ref §5): per-series change points must be clustered, or one national block of 40
  domains on 5 ASNs becomes 200 alerts.
* Tiers (design §5): an event is as strong as its strongest member (suspected or likely, by
  each detector's own probe and persistence rules), then passes through the corroborations
  (``Corroboration``): rules that see the whole candidate event and may raise its level (other
  evidence vouches for it) or lower it (other evidence speaks against it). Detectors bring
  their own (``Detector.corroborations``); the last is the tier rule ``confirmed_rule``: a
  likely event becomes ``confirmed`` when a likely member carries a deterministic fingerprint
  or likely members span >= 2 ASNs. Tiers never go down while an event is open, so a lowering
  rule holds an event back, it never demotes one already published.
* A closed block or throttling event is kept for its window after its end: a signal about a
  moment before that end (a backlog uploaded late) whose onset falls in its span re-opens it
  under the same id instead of opening a second event. Late shutdown evidence is absorbed by
  the closed shutdown it belongs to (``closed_shutdowns``).
* A member ends only when its detector reports recovery (its exit rule, ``exit_bins`` clean bins:
  hysteresis), or after ``stale_after`` without any statement (its probes went away); the event
  closes when its last member ends, with the latest member end as its end.
* Event ids are derived from the event's kind, country, first onset and first member, so two
  collectors that see the same data name the same event (idempotent upserts).

Pure and serializable: ``to_state``/``from_state`` round-trip through JSON.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from collector.detect.model import CONFIRMED, LIKELY, NONE, TIERS, Event, Signal, iso
from collector.detect.params import DetectionConfig, NetworkRoles
from collector.events.kinds import BLOCK, MONITOR_BLOCKED, SHUTDOWN, THROTTLING

MAX_MEMBERS_IN_EVIDENCE = 100


@dataclass(slots=True)
class MemberState:
    detector: str
    asn: str | None
    target: str | None
    onset: float
    last_at: float
    level: int
    max_level: int
    asns: list[str] = field(default_factory=list)
    probes: list[str] = field(default_factory=list)
    end: float | None = None
    end_reason: str | None = None
    mechanism: str | None = None
    layer: str | None = None
    fingerprint: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    def to_state(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> MemberState:
        return cls(**data)


@dataclass(slots=True)
class EventState:
    id: str
    kind: str
    cc: str
    cluster: str
    start: float
    tier: int
    updated_at: float
    members: dict[str, MemberState] = field(default_factory=dict)
    end: float | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    start_override: float | None = None  # a start better known than the members' onsets

    @property
    def open(self) -> bool:
        return self.end is None

    def to_state(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "cc": self.cc, "cluster": self.cluster,
                "start": self.start, "tier": self.tier, "updated_at": self.updated_at,
                "end": self.end, "extras": self.extras, "start_override": self.start_override,
                "members": {k: m.to_state() for k, m in self.members.items()}}

    @classmethod
    def from_state(cls, data: Mapping[str, Any]) -> EventState:
        members = {k: MemberState.from_state(m) for k, m in data["members"].items()}
        return cls(id=data["id"], kind=data["kind"], cc=data["cc"], cluster=data["cluster"],
                   start=data["start"], tier=data["tier"], updated_at=data["updated_at"],
                   members=members, end=data["end"], extras=dict(data["extras"]),
                   start_override=data["start_override"])


def cluster_of(signal: Signal) -> str:
    if signal.kind in (SHUTDOWN, MONITOR_BLOCKED):
        return "network"
    if signal.kind == BLOCK:
        return f"{signal.layer or '-'}:{signal.mechanism or '-'}"
    if signal.detector == "slowdown":
        return "generalized"
    return f"targeted:{signal.mechanism or '-'}"


def event_id(kind: str, cc: str, onset: float, seed: str) -> str:
    stamp = datetime.fromtimestamp(onset, UTC).strftime("%Y%m%dT%H%M")
    digest = hashlib.sha256(seed.encode()).hexdigest()[:8]
    return f"{kind}-{cc.lower()}-{stamp}-{digest}"


@dataclass(frozen=True, slots=True)
class Context:
    """What the tracker needs to know about the world at ``apply`` time."""

    roles: Mapping[str, NetworkRoles]
    active_asns: Mapping[str, int]  # per country: ASNs with probes heard from recently
    windows: Mapping[str, str]  # per country: the event window in force, if any


@dataclass(frozen=True, slots=True)
class Candidate:
    """An event as its members make it, offered to the corroborations before its tier is set.

    ``members`` are the tracker's own records: read them, never change them."""

    kind: str
    cc: str
    cluster: str
    start: float
    members: tuple[MemberState, ...]


class Corroboration(Protocol):
    """A rule that raises or lowers a candidate event's level (``model.NONE`` .. ``CONFIRMED``).

    It gets the level the members and the rules before it made, and returns the new one: higher
    to corroborate (outside-in probing also sees the network dark: a silence is likely), lower
    to doubt, the same when it has nothing to say. Pure, and cheap: it runs for every event
    that changed, at every evaluation."""

    def __call__(self, candidate: Candidate, level: int) -> int: ...


def confirmed_rule(candidate: Candidate, level: int) -> int:
    """The tier rule (design §5): likely, and either a likely member carries a deterministic
    fingerprint (a block page, a known interception CA) or likely members span >= 2 ASNs."""
    if level < LIKELY:
        return level
    likely = [m for m in candidate.members if m.max_level >= LIKELY]
    asns = {a for m in likely for a in m.asns}
    if len(asns) >= 2 or any(m.fingerprint for m in likely):
        return max(level, CONFIRMED)
    return level


TIER_RULES: tuple[Corroboration, ...] = (confirmed_rule,)


class Tracker:
    """Open events and the index of their open members."""

    def __init__(self, config: DetectionConfig,
                 corroborations: Iterable[Corroboration] = TIER_RULES) -> None:
        self.config = config
        # Applied in order to every changed event: detectors' own first, the tier rule last.
        self.corroborations = tuple(corroborations)
        self.events: dict[str, EventState] = {}
        self.index: dict[str, str] = {}  # open member key -> event id
        # Recently closed shutdowns [cc, asns, start, end]: evidence about them that arrives
        # late (ladder readings uploaded after the blackout) must not open a second event.
        self.closed_shutdowns: list[list[Any]] = []
        # Recently closed blocks and throttling, kept for their kind's window after their end:
        # a late statement about a moment inside one (a probe's backlog) re-opens it.
        self.closed: dict[str, EventState] = {}

    # -- queries ---------------------------------------------------------------------------

    def is_open(self, key: str) -> bool:
        return key in self.index

    def open_asns(self, kind: str, cc: str) -> set[str]:
        """ASNs with an open member in an open event of ``kind`` in ``cc``."""
        out: set[str] = set()
        for event in self.events.values():
            if event.kind == kind and event.cc == cc:
                for member in event.members.values():
                    if member.end is None:
                        out.update(member.asns)
        return out

    def open_probes(self, kind: str) -> set[str]:
        out: set[str] = set()
        for event in self.events.values():
            if event.kind == kind:
                for member in event.members.values():
                    if member.end is None:
                        out.update(member.probes)
        return out

    # -- the state machine -----------------------------------------------------------------

    def _window(self, kind: str) -> float:
        if kind == SHUTDOWN:
            return self.config.silence.join_window
        if kind == BLOCK:
            return self.config.block.cluster_window
        return self.config.throttle.cluster_window

    def _find(self, signal: Signal, cluster: str) -> EventState | None:
        assert signal.onset is not None
        best: EventState | None = None
        window = self._window(signal.kind)
        for event in self.events.values():
            if event.kind != signal.kind or event.cc != signal.cc or event.cluster != cluster:
                continue
            near = abs(signal.onset - event.start) <= window
            if not near and signal.kind == SHUTDOWN:
                # A network already dark in an open shutdown belongs to it, however late the
                # new evidence (the ladder uploaded after the blackout, say) began.
                near = signal.onset >= event.start - window and bool(
                    set(signal.asns) & {a for m in event.members.values() for a in m.asns})
            if not near and signal.kind == BLOCK and signal.target is not None:
                near = any(m.target == signal.target and
                           abs(m.onset - signal.onset) <= self.config.block.national_window
                           for m in event.members.values())
            if near and (best is None or event.start < best.start):
                best = event
        return best

    def apply(self, signals: Iterable[Signal], now: float, context: Context) -> list[Event]:
        """Fold ``signals`` into the open events; returns the events that changed."""
        changed: set[str] = set()
        for signal in sorted(signals, key=lambda s: (s.at, s.key)):
            event_id_ = self._fold(signal)
            if event_id_:
                changed.add(event_id_)
        for event in self.events.values():
            for key, member in event.members.items():
                if member.end is None and now - member.last_at > self.config.stale_after:
                    member.end, member.end_reason = member.last_at, "no_data"
                    self.index.pop(key, None)
                    changed.add(event.id)
        out = []
        for eid in sorted(changed):
            event = self.events[eid]
            self._settle(event, now, context)
            out.append(self.to_event(event, context))
            if not event.open:
                del self.events[eid]
                if event.kind == SHUTDOWN:
                    asns = sorted({a for m in event.members.values() for a in m.asns})
                    self.closed_shutdowns.append([event.cc, asns, event.start, event.end])
                else:
                    self.closed[eid] = event
        horizon = now - self.config.silence.backfill
        self.closed_shutdowns = [c for c in self.closed_shutdowns if c[3] >= horizon]
        self.closed = {k: e for k, e in self.closed.items()
                       if e.end is not None and e.end >= now - self._window(e.kind)}
        return out

    def _reopen(self, signal: Signal, cluster: str) -> EventState | None:
        """A closed event this late signal belongs to: same kind, country and cluster, its
        statement about a moment before the event ended, its onset within the kind's window of
        the event's start. The event is open again (same id) until its members end anew."""
        assert signal.onset is not None
        window = self._window(signal.kind)
        found = [e for e in self.closed.values()
                 if e.kind == signal.kind and e.cc == signal.cc and e.cluster == cluster
                 and e.end is not None and signal.at <= e.end
                 and e.start - window <= signal.onset <= e.end]
        if not found:
            return None
        event = min(found, key=lambda e: (e.start, e.id))
        del self.closed[event.id]
        event.end = None
        self.events[event.id] = event
        return event

    def _fold(self, signal: Signal) -> str | None:
        key = signal.key
        eid = self.index.get(key)
        if eid is not None:
            member = self.events[eid].members[key]
            member.level = signal.level
            member.max_level = max(member.max_level, signal.level)
            member.last_at = max(member.last_at, signal.at)
            member.probes = sorted(set(member.probes) | set(signal.probes))
            member.asns = sorted(set(member.asns) | set(signal.asns))
            member.fingerprint = member.fingerprint or signal.fingerprint
            member.stats = dict(signal.stats)
            if signal.level == NONE and signal.recovered_at is not None:
                member.end = max(member.onset, signal.recovered_at)
                member.end_reason = "recovered"
                del self.index[key]
            return eid
        if signal.level == NONE or signal.onset is None:
            return None
        cluster = cluster_of(signal)
        event = self._find(signal, cluster)
        if event is None and signal.kind == SHUTDOWN and self._absorbed(signal):
            return None
        if event is None and signal.kind != SHUTDOWN:
            event = self._reopen(signal, cluster)
        if event is None:
            new_id = event_id(signal.kind, signal.cc, signal.onset, f"{cluster}|{key}")
            event = EventState(id=new_id, kind=signal.kind, cc=signal.cc, cluster=cluster,
                               start=signal.onset, tier=NONE, updated_at=signal.at)
            self.events[new_id] = event
        ended = event.members.get(key)
        if ended is not None:  # the same series, in a re-opened event: it goes on
            ended.end = ended.end_reason = None
            ended.onset = min(ended.onset, signal.onset)
            ended.level, ended.max_level = signal.level, max(ended.max_level, signal.level)
            ended.last_at = max(ended.last_at, signal.at)
            ended.probes = sorted(set(ended.probes) | set(signal.probes))
            ended.stats = dict(signal.stats)
            self.index[key] = event.id
            return event.id
        event.members[key] = MemberState(
            detector=signal.detector, asn=signal.asn, target=signal.target, onset=signal.onset,
            last_at=signal.at, level=signal.level, max_level=signal.level,
            asns=sorted(signal.asns), probes=sorted(signal.probes),
            mechanism=signal.mechanism, layer=signal.layer, fingerprint=signal.fingerprint,
            stats=dict(signal.stats))
        self.index[key] = event.id
        return event.id

    def _absorbed(self, signal: Signal) -> bool:
        assert signal.onset is not None
        window = self.config.silence.join_window
        return any(cc == signal.cc and set(asns) & set(signal.asns)
                   and start - window <= signal.onset <= end
                   for cc, asns, start, end in self.closed_shutdowns)

    def _settle(self, event: EventState, now: float, context: Context) -> None:
        members = event.members.values()
        event.start = event.start_override if event.start_override is not None \
            else min(m.onset for m in members)
        level = max(m.max_level for m in members)
        candidate = Candidate(event.kind, event.cc, event.cluster, event.start, tuple(members))
        for corroboration in self.corroborations:
            level = min(CONFIRMED, max(NONE, corroboration(candidate, level)))
        event.tier = max(event.tier, level)
        if all(m.end is not None for m in members):
            event.end = max(m.end for m in members if m.end is not None)
        if "event_window" not in event.extras:
            event.extras["event_window"] = context.windows.get(event.cc)
        event.updated_at = now

    def amend(self, event_id_: str, start: float | None, extras: Mapping[str, Any],
              now: float, context: Context) -> Event | None:
        """Refine an open event from other evidence (the ladder's first offline reading and
        the cause it shows); returns the event if that changed anything."""
        event = self.events.get(event_id_)
        if event is None:
            return None
        moved = start is not None and start != event.start_override
        new_extras = {k: v for k, v in extras.items() if event.extras.get(k) != v}
        if not moved and not new_extras:
            return None
        if moved:
            event.start_override = event.start = start  # type: ignore[assignment]
        event.extras.update(new_extras)
        event.updated_at = now
        return self.to_event(event, context)

    # -- output ----------------------------------------------------------------------------

    def _scope(self, event: EventState, asns: list[str], context: Context) -> str:
        roles = context.roles.get(event.cc)
        if event.kind == SHUTDOWN and roles and roles.mobile and asns and \
                all(a in roles.mobile for a in asns):
            return "mobile"
        if len(asns) >= 2:
            if roles and roles.incumbent:
                if any(a in roles.incumbent for a in asns):
                    return "national"
            elif len(asns) >= math.ceil(0.5 * context.active_asns.get(event.cc, 0)):
                return "national"
            return "multi-asn"
        return "asn" if asns else "country"

    def to_event(self, event: EventState, context: Context) -> Event:
        members = sorted(event.members.values(), key=lambda m: (m.onset, m.detector,
                                                                m.asn or "", m.target or ""))
        # Once an event is likely, its networks, targets and probes are those of its
        # corroborated members; a merely suspected series that joined it (a CDN hiccup on
        # another network) stays in the evidence but does not widen the claim.
        floor = min(event.tier, LIKELY)
        strong = [m for m in members if m.max_level >= floor] or members
        asns = sorted({a for m in strong for a in m.asns})
        targets = sorted({m.target for m in strong if m.target is not None})
        probes = {p for m in strong for p in m.probes}
        fingerprints = sorted({m.fingerprint for m in members if m.fingerprint})
        mechanisms = [m.mechanism for m in members if m.mechanism]
        mechanism = max(sorted(set(mechanisms)), key=mechanisms.count) if mechanisms else None
        evidence: dict[str, Any] = {
            "scope": self._scope(event, asns, context),
            "detectors": sorted({m.detector for m in members}),
            "fingerprints": fingerprints,
            "members_total": len(members),
            "members": [self._member_json(m) for m in members[:MAX_MEMBERS_IN_EVIDENCE]],
        }
        if event.kind == BLOCK:
            layers = [m.layer for m in members if m.layer]
            evidence["layer"] = max(sorted(set(layers)), key=layers.count) if layers else None
        if event.kind == THROTTLING:
            evidence["class"] = "generalized" if event.cluster == "generalized" else "targeted"
            evidence["extreme"] = any(m.stats.get("extreme") for m in members)
        evidence.update(event.extras)
        return Event(
            id=event.id, kind=event.kind,  # type: ignore[arg-type]
            tier=TIERS[max(event.tier, 1)], status="open" if event.open else "closed",
            start=event.start, end=event.end, updated_at=event.updated_at, cc=event.cc,
            asns=tuple(asns), targets=tuple(targets), mechanism=mechanism,
            probes=len(probes), evidence=evidence)

    @staticmethod
    def _member_json(member: MemberState) -> dict[str, Any]:
        return {"detector": member.detector, "asn": member.asn, "target": member.target,
                "onset": iso(member.onset),
                "end": None if member.end is None else iso(member.end),
                "end_reason": member.end_reason, "level": TIERS.get(member.max_level),
                "probes": len(member.probes), **member.stats}

    # -- persistence -----------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        return {"events": {k: e.to_state() for k, e in self.events.items()},
                "closed_shutdowns": self.closed_shutdowns,
                "closed": {k: e.to_state() for k, e in self.closed.items()}}

    def load_state(self, data: Mapping[str, Any]) -> None:
        self.events = {k: EventState.from_state(e) for k, e in data["events"].items()}
        self.closed_shutdowns = [list(c) for c in data["closed_shutdowns"]]
        self.closed = {k: EventState.from_state(e) for k, e in data.get("closed", {}).items()}
        self.index = {key: event.id for event in self.events.values()
                      for key, member in event.members.items() if member.end is None}
