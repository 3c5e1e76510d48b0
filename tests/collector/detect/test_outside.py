"""The outside-in verdict: IODA's 0.8 / 0.5 of the recent median, warm-up, inpainting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.detect.outside import Level, OutsideParams, Verdict, blocks_up, judge, to_history
from collector.outside.belief import BlockState

PARAMS = OutsideParams(min_baseline=4.0, min_history=3)


@pytest.mark.parametrize(
    ("current", "level"),
    [
        (10.0, Level.NONE),
        (8.0, Level.NONE),
        (7.9, Level.WARNING),
        (5.0, Level.WARNING),
        (4.9, Level.CRITICAL),
        (0.0, Level.CRITICAL),
    ],
)
def test_thresholds_against_the_median(current: float, level: Level) -> None:
    verdict = judge(current, [10.0, 9.0, 10.0, 11.0, 30.0], PARAMS)
    assert verdict.baseline == 10.0
    assert verdict.level is level


def test_no_verdict_during_warm_up_or_on_a_tiny_baseline() -> None:
    assert judge(0.0, [10.0, 10.0], PARAMS).level is Level.INSUFFICIENT
    assert judge(0.0, [3.0, 3.0, 3.0], PARAMS).level is Level.INSUFFICIENT
    assert judge(0.0, [0.0, 0.0, 0.0], OutsideParams(min_baseline=0.0, min_history=3)).level is (
        Level.INSUFFICIENT
    )


def test_outliers_are_inpainted_and_normal_points_kept() -> None:
    assert to_history(Verdict(Level.CRITICAL, 2.0, 10.0), PARAMS) == 10.0
    assert to_history(Verdict(Level.NONE, 25.0, 10.0), PARAMS) == 10.0
    assert to_history(Verdict(Level.NONE, 9.0, 10.0), PARAMS) == 9.0
    assert to_history(Verdict(Level.INSUFFICIENT, 3.0, None), PARAMS) == 3.0


def test_an_outage_does_not_train_the_baseline() -> None:
    history = [10.0] * 6
    levels = []
    for current in [10.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 10.0]:
        verdict = judge(current, history[-6:], PARAMS)
        levels.append(verdict.level)
        history.append(to_history(verdict, PARAMS))
    assert levels == [Level.NONE] + [Level.CRITICAL] * 6 + [Level.NONE]


def test_blocks_up_counts_only_up() -> None:
    counts = blocks_up(
        [
            ("a", BlockState.UP),
            ("a", BlockState.UNCERTAIN),
            ("b", BlockState.DOWN),
            ("a", BlockState.UP),
        ]
    )
    assert counts == {"a": 2, "b": 0}


@pytest.mark.parametrize(
    "kwargs",
    [{"critical_below": 0.9}, {"warning_below": 1.2}, {"min_history": 0}, {"inpaint_high": 0.9}],
)
def test_bad_params_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="need|must be"):
        OutsideParams(**kwargs)  # type: ignore[arg-type]


@given(st.floats(0.0, 1000.0), st.lists(st.floats(20.0, 1000.0), min_size=6, max_size=50))
def test_level_is_monotone_in_the_current_count(current: float, history: list[float]) -> None:
    params = OutsideParams()
    rank = {Level.NONE: 0, Level.WARNING: 1, Level.CRITICAL: 2}
    lower = judge(current / 2, history, params).level
    higher = judge(current, history, params).level
    assert rank[lower] >= rank[higher]
