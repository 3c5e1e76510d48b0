"""The probe's side of signed endpoint announcements (the format: ``probe.core.announcement``).

A verified announcement's endpoints are checked like configured ones (``Endpoint``), come
after the configured ones in the probe's ordered list (``probe.daemon.endpoints``), and are
kept in the local database so they survive a restart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

from probe.core.announcement import (
    FIELD,
    TIME_FORMAT,
    AnnouncementError,
    Payload,
    parse_payload,
    public_key,
)
from probe.core.announcement import verify as verify_payload
from probe.core.typed_config import ConfigError, build
from probe.daemon.endpoints import Endpoint

__all__ = ["FIELD", "Announcement", "AnnouncementError", "kept", "public_key", "verify"]


@dataclass(frozen=True, slots=True)
class Announcement:
    serial: int
    expires: datetime
    endpoints: tuple[Endpoint, ...]

    def to_json(self) -> str:
        """What the local database keeps (already verified: not re-verified at start)."""
        return json.dumps({"serial": self.serial,
                           "expires": self.expires.strftime(TIME_FORMAT),
                           "endpoints": [endpoint_dict(e) for e in self.endpoints]})


def endpoint_dict(endpoint: Endpoint) -> dict[str, str]:
    return {"name": endpoint.name, "url": endpoint.url} | (
        {"front": endpoint.front} if endpoint.front else {})


def _checked(found: Payload) -> Announcement:
    try:
        endpoints = tuple(build(Endpoint, item, f"endpoints[{i}]")
                          for i, item in enumerate(found.endpoints))
    except ConfigError as exc:
        raise AnnouncementError(str(exc)) from exc
    if len({e.name for e in endpoints}) != len(endpoints):
        raise AnnouncementError("endpoint names must be unique")
    return Announcement(found.serial, found.expires, endpoints)


def verify(message: object, key_text: str, now: datetime, applied_serial: int) -> Announcement:
    """A heartbeat answer's announcement, signed with ``key_text`` (the config's
    ``collector.announce_key``), newer and unexpired, with good endpoints."""
    return _checked(verify_payload(message, public_key(key_text), now, applied_serial))


def kept(text: str) -> Announcement:
    """The announcement the local database kept (``Announcement.to_json``)."""
    return _checked(parse_payload(text.encode()))
