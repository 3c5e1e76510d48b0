"""Event windows from the heartbeat answer: parsed defensively, on a table."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from probe.daemon import windows

UTC_MOMENT = datetime(2026, 1, 4, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("raw", "expected_names"), [
    ([{"start": "2026-01-01T00:00:00Z", "end": "2026-01-11T00:00:00Z", "name": "unrest"}],
     ["unrest"]),
    ([{"start": "2026-01-01 00:00:00", "end": "2026-01-02 00:00:00", "name": "ooni"}], ["ooni"]),
    ([{"start": "2026-01-01T06:00:00+06:00", "end": "2026-01-02T00:00:00+06:00"}], [""]),
    ([{"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z", "name": "backwards"}],
     []),
    ([{"start": "yesterday", "end": "2026-01-02T00:00:00Z", "name": "bad start"}], []),
    ([{"end": "2026-01-02T00:00:00Z", "name": "no start"}], []),
    # An offset carrying the time out of the representable years (a hostile collector).
    ([{"start": "0001-01-01T00:00:00+01:00", "end": "2026-01-02T00:00:00Z"}], []),
    ([{"start": "2026-01-01T00:00:00Z", "end": "9999-12-31T23:59:59-01:00"}], []),
    (["not an object", 3, None], []),
    ({"start": "2026-01-01", "end": "2026-01-02"}, []),
    (None, []),
    ([{"start": "2026-01-01", "end": "2026-01-02", "cc": "KZ", "name": "other country"},
      {"start": "2026-01-01", "end": "2026-01-02", "cc": "KG", "name": "ours"},
      {"start": "2026-01-01", "end": "2026-01-02", "cc": "*", "name": "everyone"}],
     ["ours", "everyone"]),
])
def test_parse_keeps_only_usable_windows(raw: object, expected_names: list[str]) -> None:
    assert [w.name for w in windows.parse(raw, "KG")] == expected_names


def test_offsets_are_converted_to_utc() -> None:
    [window] = windows.parse([{"start": "2026-01-01T06:00:00+06:00",
                               "end": "2026-01-01T12:00:00+06:00"}])
    assert window.start == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)


def test_a_window_is_active_from_start_up_to_its_end() -> None:
    told = windows.parse([{"start": "2026-01-04T12:00:00Z", "end": "2026-01-04T13:00:00Z",
                           "name": "vote count"}])
    assert windows.active(told, UTC_MOMENT) == told[0]
    assert windows.active(told, datetime(2026, 1, 4, 13, 0, tzinfo=UTC)) is None
    assert windows.active(told, datetime(2026, 1, 4, 11, 59, 59, tzinfo=UTC)) is None


def test_windows_round_trip_through_the_journal_spelling() -> None:
    told = windows.parse([{"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z",
                           "name": "x"}])
    assert windows.parse(windows.to_wire(told)) == told


def test_an_absurd_number_of_windows_is_cut() -> None:
    raw = [{"start": "2026-01-01", "end": "2026-01-02"}] * 1000
    assert len(windows.parse(raw)) == windows.MAX_WINDOWS
