"""Cadence rules and the timetable, on tables (no clock, no I/O)."""

from __future__ import annotations

import random

import pytest

from probe.daemon import scheduler


@pytest.mark.parametrize(("base", "speedup", "in_window", "expected"), [
    (3600.0, 4.0, False, 3600.0), (3600.0, 4.0, True, 900.0), (300.0, 1.0, True, 300.0)])
def test_event_windows_divide_the_interval(base: float, speedup: float, in_window: bool,
                                           expected: float) -> None:
    assert scheduler.target_interval(base, speedup, in_window) == expected


def test_jitter_stays_within_bounds_and_actually_varies() -> None:
    rng = random.Random(1)
    values = [scheduler.jittered(3600.0, 0.2, rng) for _ in range(2000)]
    assert min(values) >= 2880.0 and max(values) <= 4320.0
    assert max(values) - min(values) > 1000.0  # not a constant
    assert scheduler.jittered(60.0, 0.0, rng) == 60.0


def test_first_measurements_are_spread_over_at_most_five_minutes() -> None:
    rng = random.Random(2)
    hourly = [scheduler.first_delay(3600.0, rng) for _ in range(1000)]
    assert max(hourly) <= 300.0 and min(hourly) >= 0.0 and max(hourly) > 250.0
    assert max(scheduler.first_delay(60.0, rng) for _ in range(200)) <= 60.0


@pytest.mark.parametrize(("failures", "low", "high"), [
    (1, 24.0, 36.0), (2, 48.0, 72.0), (3, 96.0, 144.0), (10, 720.0, 1080.0)])
def test_backoff_doubles_up_to_the_maximum(failures: int, low: float, high: float) -> None:
    rng = random.Random(3)
    for _ in range(50):
        assert low <= scheduler.backoff(failures, 30.0, 900.0, rng) <= high


def test_backoff_honours_retry_after() -> None:
    assert scheduler.backoff(1, 30.0, 900.0, random.Random(4), retry_after=600.0) == 600.0


def test_timetable_gives_the_earliest_job_and_forgets_replanned_entries() -> None:
    table = scheduler.Timetable()
    table.plan("ladder", 10.0)
    table.plan("heartbeat", 5.0)
    table.plan("target:a", 7.0)
    table.plan("heartbeat", 12.0)  # re-planned: the entry at 5.0 is stale now
    assert table.peek() == ("target:a", 7.0)
    assert table.pop() == "target:a"
    table.plan_earlier("ladder", 20.0)  # later than planned: ignored
    table.plan_earlier("upload", 11.0)
    assert [table.pop() for _ in range(3)] == ["ladder", "upload", "heartbeat"]
    assert table.peek() is None
    assert table.due("ladder") is None
