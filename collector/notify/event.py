"""A read-only view of one detection event, in the JSON shape of design §4 (the API contract).

Notifications and the status page read events only through this view, so they depend on the
published contract (``GET /api/v1/events``) and not on how detection computes events. Anything
that can produce that JSON can feed them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

from collector.events.kinds import ALL, Kind

Tier = Literal["suspected", "likely", "confirmed"]
Status = Literal["open", "closed"]

TIERS: tuple[Tier, ...] = ("suspected", "likely", "confirmed")
STATUSES: tuple[Status, ...] = ("open", "closed")


def tier_rank(tier: str) -> int:
    """0 for suspected, 1 for likely, 2 for confirmed; tiers only ever compare by this rank."""
    return TIERS.index(cast(Tier, tier))


def parse_time(value: str) -> datetime:
    """ISO 8601 (``Z`` or an offset) or OONI's ``YYYY-MM-DD HH:MM:SS``, as an aware UTC time."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class EventView:
    """One event as published; ``end`` is None while it is open."""

    id: str
    kind: Kind
    tier: Tier
    status: Status
    start: datetime
    end: datetime | None
    updated_at: datetime
    cc: str
    asns: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    mechanism: str | None = None
    probes: int = 0
    evidence: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def from_json(cls, data: object) -> EventView:
        """Parse the contract JSON; raises ValueError naming the bad key."""
        if not isinstance(data, dict):
            raise ValueError("event: expected a JSON object")

        def text(key: str, allowed: tuple[str, ...] | None = None) -> str:
            value = data.get(key)
            if not isinstance(value, str) or not value:
                raise ValueError(f"event.{key}: required non-empty string")
            if allowed is not None and value not in allowed:
                raise ValueError(f"event.{key}: one of {', '.join(allowed)}")
            return value

        def moment(key: str) -> datetime:
            try:
                return parse_time(text(key))
            except ValueError as exc:
                raise ValueError(f"event.{key}: not an ISO 8601 time") from exc

        def strings(key: str) -> tuple[str, ...]:
            value = data.get(key) or []
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"event.{key}: expected a list of strings")
            return tuple(value)

        end = moment("end") if data.get("end") is not None else None
        mechanism = data.get("mechanism")
        probes = data.get("probes", 0)
        evidence = data.get("evidence") or {}
        if mechanism is not None and not isinstance(mechanism, str):
            raise ValueError("event.mechanism: expected a string or null")
        if isinstance(probes, bool) or not isinstance(probes, int) or probes < 0:
            raise ValueError("event.probes: expected a non-negative integer")
        if not isinstance(evidence, dict):
            raise ValueError("event.evidence: expected an object")
        return cls(
            id=text("id"), kind=cast(Kind, text("kind", ALL)),
            tier=cast(Tier, text("tier", TIERS)), status=cast(Status, text("status", STATUSES)),
            start=moment("start"), end=end, updated_at=moment("updated_at"), cc=text("cc"),
            asns=strings("asns"), targets=strings("targets"), mechanism=mechanism,
            probes=probes, evidence=evidence)

    def to_json(self) -> dict[str, Any]:
        """The contract JSON again (times as ISO 8601 UTC with ``Z``)."""

        def iso(moment: datetime | None) -> str | None:
            return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")

        return {"id": self.id, "kind": self.kind, "tier": self.tier, "status": self.status,
                "start": iso(self.start), "end": iso(self.end),
                "updated_at": iso(self.updated_at), "cc": self.cc, "asns": list(self.asns),
                "targets": list(self.targets), "mechanism": self.mechanism,
                "probes": self.probes, "evidence": self.evidence}

    @property
    def scope(self) -> str:
        """Where: the country alone for a national event, else the country and its networks."""
        return self.cc if not self.asns else f"{self.cc} {', '.join(self.asns)}"
