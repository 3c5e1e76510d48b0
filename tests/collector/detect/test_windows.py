"""Event windows: the calendar file, its validation, and what a window changes."""

from __future__ import annotations

import pytest

from collector import config as collector_config
from collector.detect.model import parse_time
from collector.events.windows import build_calendar, load_calendar
from probe.core.typed_config import ConfigError
from tests.helpers.paths import REPO, TESTDATA


@pytest.mark.parametrize(("name", "message"), [
    ("invalid-date.yaml",
     "windows[1].date: not YYYY-MM-DD or MM-DD (quote it: YAML reads an unquoted date as a date)"),
    ("invalid-unquoted-date.yaml", "windows[0].date: expected a string, got date"),
    ("invalid-country.yaml", "windows[0].cc: not a two-letter upper-case country code"),
    ("invalid-duplicate.yaml", "windows[1].name: duplicate window 'twice'"),
    ("invalid-unknown-key.yaml", "windows[0].afterr: unknown key"),
])
def test_invalid_calendars_fail_with_the_key_path(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_calendar(TESTDATA / "events" / name)
    assert str(caught.value) == message


@pytest.mark.parametrize(("name", "message"), [
    ("invalid-collector-detection.yaml", "detection.block.likely_share: must be in (0, 1]"),
    ("invalid-collector-networks.yaml",
     "detection.networks.KZ.mobile: not an ASN like AS1234: 'Kcell'"),
    ("invalid-collector-calendar.yaml",
     "detection.event_windows: ../events/invalid-date.yaml: windows[1].date: not YYYY-MM-DD "
     "or MM-DD (quote it: YAML reads an unquoted date as a date)"),
])
def test_invalid_detection_config(name: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        collector_config.load(TESTDATA / "configs" / name)
    assert str(caught.value) == message


def test_the_shipped_calendar_and_config_load_with_documented_windows() -> None:
    config = collector_config.load(REPO / "configs" / "collector.yaml")
    assert config.detection.event_windows is not None
    calendar = load_calendar(config.detection.event_windows)
    names = {spec.name for spec in calendar.specs}
    assert {"kz-january-2022-anniversary", "kz-presidential-election-2022",
            "kg-october-2020-anniversary"} <= names
    # The national shutdown of 2022-01-05 10:30 UTC falls inside the anniversary window.
    shutdown = parse_time("2022-01-05T10:30:00Z")
    assert [w.name for w in calendar.active("KZ", shutdown)] == ["kz-january-2022-anniversary"]
    assert calendar.active("KG", shutdown) == []


def test_yearly_windows_and_the_earlier_freeze() -> None:
    calendar = build_calendar({"windows": [{"name": "v", "cc": "KZ", "date": "05-09"}]})
    anchor = parse_time("2031-05-09T00:00:00Z")
    day = 86400.0
    assert calendar.active("KZ", anchor - 3 * day + 1) and not calendar.active(
        "KZ", anchor - 3 * day - 1)
    assert calendar.active("KZ", anchor + 7 * day - 1)
    assert not calendar.active("KZ", anchor + 7 * day + 1)
    # Baselines freeze a week before the date, earlier than cadence rises.
    assert calendar.frozen("KZ", anchor - 6 * day) and not calendar.active("KZ", anchor - 6 * day)
    assert not calendar.frozen("KZ", anchor - 8 * day)
    assert not calendar.frozen("KG", anchor)
    [window] = calendar.active("KZ", anchor)
    assert (window.heartbeat_interval, window.target_interval) == (30.0, 900.0)


def test_once_only_windows_happen_once_and_leap_days_only_in_leap_years() -> None:
    calendar = build_calendar({"windows": [
        {"name": "once", "cc": "KG", "date": "2024-04-18"},
        {"name": "leap", "cc": "KG", "date": "02-29", "before": "0s", "after": "1d"}]})
    assert [w.name for w in calendar.active("KG", parse_time("2024-04-18T12:00:00Z"))] == [
        "once"]
    assert calendar.active("KG", parse_time("2025-04-18T12:00:00Z")) == []
    assert [w.name for w in calendar.active("KG", parse_time("2028-02-29T12:00:00Z"))] == [
        "leap"]
    assert calendar.active("KG", parse_time("2027-03-01T00:00:01Z")) == []
