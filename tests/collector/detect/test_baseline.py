"""The same-hour baseline: history, inpainting, level shifts, freezing."""

from __future__ import annotations

import pytest

from collector.detect.baseline import HourlyBaseline, add, predict
from collector.detect.params import ThrottleParams

P = ThrottleParams()
HOUR = 3600.0
DAY = 86400.0
T0 = 1_699_920_000.0  # midnight UTC


def daily(base: HourlyBaseline, days: int, value_at: object, start: float = T0,
          frozen: object = None) -> float:
    """Feed one value every 10 minutes for ``days`` days; returns the time reached."""
    t = start
    while t < start + days * DAY:
        add(base, t, value_at(t), P, bool(frozen(t)) if frozen else False)  # type: ignore[operator]
        t += 600
    return t


def evening(t: float) -> float:
    return 2.0 if 18 <= (t % DAY) / HOUR < 22 else 1.0


def test_same_hour_median_learns_a_daily_cycle() -> None:
    base = HourlyBaseline()
    assert predict(base, T0, P) is None
    end = daily(base, 4, evening)
    assert predict(base, end + 19 * HOUR, P) == pytest.approx(2.0)
    assert predict(base, end + 3 * HOUR, P) == pytest.approx(1.0)


def test_an_anomaly_is_inpainted_not_learned() -> None:
    base = HourlyBaseline()
    end = daily(base, 4, lambda t: 1.0)
    # Two days ten times slower: each hour is replaced by the prediction before storing.
    end = daily(base, 2, lambda t: 10.0, start=end)
    assert predict(base, end + 3 * HOUR, P) == pytest.approx(1.0)


def test_a_lasting_level_shift_is_accepted_after_the_inpainting_limit() -> None:
    base = HourlyBaseline()
    end = daily(base, 3, lambda t: 1.0)
    end = daily(base, 12, lambda t: 3.0, start=end)
    assert predict(base, end + 3 * HOUR, P) == pytest.approx(3.0)


def test_frozen_hours_teach_nothing() -> None:
    base = HourlyBaseline()
    end = daily(base, 4, lambda t: 1.0)
    end = daily(base, 3, lambda t: 1.7, start=end, frozen=lambda t: True)
    assert predict(base, end + 3 * HOUR, P) == pytest.approx(1.0)


def test_state_round_trips() -> None:
    base = HourlyBaseline()
    daily(base, 2, evening)
    copy = HourlyBaseline.from_state(base.to_state())
    assert copy.slots == base.slots and copy.values == base.values
    assert predict(copy, T0 + 3 * DAY, P) == predict(base, T0 + 3 * DAY, P)
