"""The clock check's rules on tables: the HTTP Date, the offset and its uncertainty, jumps,
expiry, and the annotations a measurement gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from probe.daemon.clock_check import (
    ClockSettings,
    ClockWatch,
    describe_offset,
    parse_http_date,
)

T0 = datetime(2026, 5, 9, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("header", "expected"), [
    ("Sat, 09 May 2026 12:00:07 GMT", T0 + timedelta(seconds=7)),
    ("Saturday, 09-May-26 12:00:07 GMT", T0 + timedelta(seconds=7)),  # RFC 850, obsolete
    ("Sat May  9 12:00:07 2026", T0 + timedelta(seconds=7)),  # asctime, obsolete
    ("Sat, 09 May 2026 14:00:07 +0200", T0 + timedelta(seconds=7)),
    ("yesterday", None), ("", None), (None, None),
    # An offset carrying the date out of the representable years (a hostile collector).
    ("Fri, 31 Dec 9999 23:59:59 -0100", None),
])
def test_parse_http_date(header: str | None, expected: datetime | None) -> None:
    assert parse_http_date(header) == expected


def watch(max_offset: float = 10.0, valid_for: float = 86400.0) -> ClockWatch:
    clock = ClockWatch(ClockSettings(max_offset=max_offset, valid_for=valid_for))
    clock.begin(T0, 1000.0)
    return clock


@pytest.mark.parametrize(("server", "trip", "offset", "uncertainty"), [
    # Date is truncated to the second: the collector's time was 0.5 s later on average.
    (T0, 0.0, 0.5, 0.5),
    (T0 + timedelta(hours=3), 0.0, 10800.5, 0.5),
    # A 4 s round trip: compared at the midpoint, 2 s more uncertain.
    (T0 + timedelta(seconds=2), 4.0, 0.5, 2.5),
    (T0 - timedelta(days=400), 0.0, -34559999.5, 0.5),
])
def test_offset_and_uncertainty(server: datetime, trip: float, offset: float,
                                uncertainty: float) -> None:
    clock = watch()
    check = clock.observe(server, T0, T0 + timedelta(seconds=trip), 1000.0 + trip)
    assert (check.offset, check.uncertainty) == (offset, uncertainty)


@pytest.mark.parametrize(("server_ahead", "status", "annotations"), [
    (0.0, "ok", {}),
    (9.0, "ok", {}),
    (11.0, "off", {"clock_offset_s": "11.5"}),
    (-3600.0, "off", {"clock_offset_s": "-3599.5"}),
])
def test_status_and_annotations(server_ahead: float, status: str,
                                annotations: dict[str, str]) -> None:
    clock = watch()
    assert clock.status(1000.0) == "unverified"
    assert clock.annotations(1000.0) == {"clock_unverified": "true"}
    clock.observe(T0 + timedelta(seconds=server_ahead), T0, T0, 1000.0)
    assert clock.status(1010.0) == status
    assert clock.annotations(1010.0) == annotations


def test_a_jump_of_the_wall_clock_makes_the_offset_unknown() -> None:
    clock = watch()
    clock.observe(T0 + timedelta(hours=1), T0, T0, 1000.0)
    assert clock.status(1000.0) == "off" and clock.epoch == 0
    # Both clocks advance together (slewing by a second is no jump): nothing changes.
    assert clock.jumped(T0 + timedelta(seconds=601), 1600.0) is None
    assert clock.status(1600.0) == "off"
    # NTP steps the wall clock forward by an hour.
    assert clock.jumped(T0 + timedelta(hours=1, seconds=700), 1700.0) == pytest.approx(3600.0)
    assert clock.status(1700.0) == "unverified" and clock.epoch == 1
    assert clock.annotations(1700.0) == {"clock_unverified": "true"}
    # Checked again on the corrected clock: right.
    clock.observe(T0 + timedelta(hours=1, seconds=760), T0 + timedelta(hours=1, seconds=760),
                  T0 + timedelta(hours=1, seconds=760), 1760.0)
    assert clock.status(1760.0) == "ok" and clock.epoch == 1


def test_an_offset_expires_without_a_new_check() -> None:
    clock = watch(valid_for=3600.0)
    clock.observe(T0 + timedelta(seconds=30), T0, T0, 1000.0)
    assert clock.status(1000.0 + 3600.0) == "off"
    assert clock.status(1000.0 + 3601.0) == "unverified"
    assert clock.current(1000.0 + 3601.0) is None
    assert clock.last is not None and clock.last.offset == 30.5  # still remembered


@pytest.mark.parametrize(("seconds", "words"), [
    (0.3, "+0.3 s"), (-12.44, "-12.4 s"), (10800.5, "+3 h 0 min"), (-5400, "-90 min"),
    (86400 * 3 + 7200, "+3 d 2 h"),
])
def test_describe_offset(seconds: float, words: str) -> None:
    assert describe_offset(seconds) == words
