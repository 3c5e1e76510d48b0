"""Is the probe's clock right? Checked against the collector's HTTP ``Date`` header.

A Raspberry Pi has no real-time clock: after a reboot it starts from the time it saved at
shutdown (or from 1970) and waits for NTP. A Pi rebooted during an Internet shutdown cannot
reach NTP, and its measurements would carry wrong times exactly when times matter most. The
probe never rewrites a measurement's timestamps (they are what its clock said); it records how
far off that clock was, so whoever reads the data can tell and correct:

* every answer from the collector (heartbeat, upload) carries ``Date``; the offset is the
  collector's time minus the probe's, at the midpoint of the request, give or take half the
  round trip and the header's one-second resolution;
* a known offset stays valid while the clock does not jump: the wall clock minus the
  monotonic clock is constant unless the system clock is stepped (NTP, a person, a resumed
  suspend), and a jump of more than ``STEP_TOLERANCE`` makes it unknown again. It also
  expires after ``valid_for`` without a new check (crystals drift by seconds a day);
* a measurement recorded while no offset is known is annotated ``clock_unverified: "true"``;
  one recorded while the offset exceeds ``max_offset`` gets ``clock_offset_s``. When an
  offset becomes known again without a jump in between, the still-spooled unverified
  measurements of that stretch get ``clock_offset_s`` too (their ``clock_unverified`` stays:
  they were not verified when taken). Annotation values are strings, as OONI's are.

``ClockWatch`` holds this state and is fed times by the daemon; it does no I/O.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from probe.core.typed_config import duration_field, positive

STEP_TOLERANCE = 2.0
"""Seconds the wall clock may move against the monotonic one before it counts as a jump."""
DATE_RESOLUTION = 1.0
UNVERIFIED = "clock_unverified"
OFFSET = "clock_offset_s"

Status = Literal["unverified", "ok", "off"]


@dataclass(frozen=True, slots=True)
class ClockSettings:
    """The ``clock:`` section of the probe config."""

    max_offset: float = duration_field(10.0, positive)
    valid_for: float = duration_field(86400.0, positive)


def parse_http_date(value: str | None) -> datetime | None:
    """An HTTP ``Date`` header (RFC 9110 IMF-fixdate, or the obsolete forms) as UTC."""
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)  # "-0000": HTTP dates are always GMT
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # an offset carrying year 1 or 9999 out of range
        return None


@dataclass(frozen=True, slots=True)
class Check:
    """One comparison with the collector: ``offset`` = collector minus probe, in seconds."""

    offset: float
    uncertainty: float
    at: datetime  # the probe's own time of the check


class ClockWatch:
    """What is known about the probe clock's offset; see the module docstring."""

    def __init__(self, settings: ClockSettings) -> None:
        self.settings = settings
        self.last: Check | None = None
        self.epoch = 0
        self._base: float | None = None  # wall minus monotonic when last anchored
        self._checked_mono: float | None = None

    def begin(self, wall: datetime, mono: float) -> None:
        """Anchor the jump detection (at start: nothing is known about the offset yet)."""
        self._base = wall.timestamp() - mono
        self.last = None
        self._checked_mono = None

    def observe(self, server_date: datetime, sent: datetime, received: datetime,
                received_mono: float) -> Check:
        """Record the collector's ``Date`` of an answer to a request sent at ``sent`` and
        answered at ``received`` (both on the probe's clock)."""
        self.jumped(received, received_mono)
        half_trip = max(0.0, (received - sent).total_seconds()) / 2
        midpoint = sent.timestamp() + half_trip
        # Date is truncated to the second: the collector's time was within the next one.
        offset = server_date.timestamp() + DATE_RESOLUTION / 2 - midpoint
        self.last = Check(round(offset, 1), round(half_trip + DATE_RESOLUTION / 2, 1), received)
        self._checked_mono = received_mono
        return self.last

    def jumped(self, wall: datetime, mono: float) -> float | None:
        """The size of a jump of the wall clock since the anchor (seconds), or None.

        A jump makes the offset unknown and starts a new epoch: unverified measurements of
        an earlier epoch can no longer be given a later offset."""
        base = wall.timestamp() - mono
        if self._base is None:
            self._base = base
            return None
        step = base - self._base
        if abs(step) <= STEP_TOLERANCE:
            return None
        self._base = base
        self.last = None
        self._checked_mono = None
        self.epoch += 1
        return step

    def current(self, mono: float) -> Check | None:
        """The last check, while it is still valid."""
        if self.last is None or self._checked_mono is None:
            return None
        if mono - self._checked_mono > self.settings.valid_for:
            return None
        return self.last

    def status(self, mono: float) -> Status:
        check = self.current(mono)
        if check is None:
            return "unverified"
        return "off" if abs(check.offset) > self.settings.max_offset else "ok"

    def annotations(self, mono: float) -> dict[str, str]:
        """What a measurement recorded now is annotated with (nothing when the clock is
        right)."""
        check = self.current(mono)
        if check is None:
            return {UNVERIFIED: "true"}
        if abs(check.offset) > self.settings.max_offset:
            return {OFFSET: f"{check.offset:.1f}"}
        return {}


def describe_offset(offset: float) -> str:
    """``+3 h 0 min`` / ``-12.4 s``: the offset in words a volunteer reads at a glance."""
    sign = "+" if offset >= 0 else "-"
    size = abs(offset)
    if size < 120:
        return f"{sign}{size:.1f} s"
    minutes = int(size // 60)
    if minutes < 120:
        return f"{sign}{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{sign}{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{sign}{days} d {hours} h"
