"""The outside-in belief model: exact Bayes updates, round stopping rule, and invariants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.outside.belief import (
    BELIEF_MAX,
    BELIEF_MIN,
    INITIAL_BELIEF_UP,
    REPLY_IF_DOWN,
    ROUND_BUDGET,
    BlockState,
    Round,
    estimate_availability,
    probeable,
    run_round,
    state_of,
    update,
)


def test_a_lost_packet_on_a_dense_block_makes_it_uncertain_not_down() -> None:
    # A is capped at 0.99: B' = 0.01*0.99 / (0.01*0.99 + (1 - 0.99/256)*0.01)
    expected = 0.0099 / (0.0099 + (1 - REPLY_IF_DOWN) * 0.01)
    assert update(0.99, False, 1.0) == pytest.approx(expected, rel=1e-12)
    assert state_of(update(0.99, False, 1.0)) is BlockState.UNCERTAIN


def test_a_reply_to_a_down_block_raises_doubt_by_bayes() -> None:
    expected = 0.99 * 0.01 / (0.99 * 0.01 + REPLY_IF_DOWN * 0.99)
    assert update(0.01, True, 0.99) == pytest.approx(expected, rel=1e-12)
    assert state_of(expected) is BlockState.UNCERTAIN


def test_belief_is_clamped_at_both_ends() -> None:
    assert update(0.99, True, 0.5) == BELIEF_MAX
    assert update(0.01, False, 0.99) == BELIEF_MIN


@pytest.mark.parametrize(
    ("belief", "state"),
    [
        (0.99, BlockState.UP),
        (0.9001, BlockState.UP),
        (0.9, BlockState.UNCERTAIN),
        (0.5, BlockState.UNCERTAIN),
        (0.1, BlockState.UNCERTAIN),
        (0.0999, BlockState.DOWN),
        (0.01, BlockState.DOWN),
    ],
)
def test_state_thresholds(belief: float, state: BlockState) -> None:
    assert state_of(belief) is state


@pytest.mark.parametrize(
    ("belief", "availability", "outcomes", "sent", "state"),
    [
        # up and answering: one probe per round
        (0.99, 0.99, [True, True], 1, BlockState.UP),
        # one random loss, then a reply: two probes, still up
        (0.99, 0.99, [False, True], 2, BlockState.UP),
        # a cut: two silent probes take a dense block down
        (0.99, 0.99, [False] * 20, 2, BlockState.DOWN),
        # down and silent: one probe per round
        (0.01, 0.99, [False, False], 1, BlockState.DOWN),
        # recovery: the first reply raises doubt, the second confirms
        (0.01, 0.99, [True, True, True], 2, BlockState.UP),
        # a sparse block (A = 0.2) needs more silence than one round's budget to go down
        (0.99, 0.2, [False] * 20, ROUND_BUDGET, BlockState.UNCERTAIN),
        # ... and a reply after two misses ends the round up
        (0.99, 0.2, [False, False, True, False], 3, BlockState.UP),
    ],
)
def test_round_table(
    belief: float, availability: float, outcomes: list[bool], sent: int, state: BlockState
) -> None:
    result = run_round(belief, availability, outcomes)
    assert result.sent == sent
    assert result.state is state


def test_sparse_block_goes_down_over_rounds_when_silent() -> None:
    belief = INITIAL_BELIEF_UP
    states = []
    for _ in range(3):
        result = run_round(belief, 0.2, [False] * ROUND_BUDGET)
        belief = result.belief_up
        states.append(result.state)
    # each miss multiplies the odds of up by 0.8 / (1 - 0.99/256) ~ 0.803: from odds 99 it takes
    # 31 misses to fall below odds 1/9, i.e. the third probe of the third round
    assert states == [BlockState.UNCERTAIN, BlockState.UNCERTAIN, BlockState.DOWN]
    assert result.sent == 3


def test_round_ends_when_outcomes_run_out_and_refuses_probes_after_the_end() -> None:
    assert run_round(0.99, 0.99, []).sent == 0
    done = run_round(0.99, 0.99, [True])
    assert not done.wants_probe
    with pytest.raises(ValueError, match="round is over"):
        done.observe(True)


def test_availability_estimate() -> None:
    assert estimate_availability(0, 0) is None
    assert estimate_availability(3, 4) == 0.75
    assert estimate_availability(10, 10) == 0.99
    assert probeable(0.1) and not probeable(0.09) and not probeable(None)
    with pytest.raises(ValueError, match="answered <= sent"):
        estimate_availability(5, 4)


@pytest.mark.parametrize(
    ("belief", "availability"), [(1.5, 0.5), (-0.1, 0.5), (0.5, 0.0), (0.5, 1.1)]
)
def test_out_of_range_inputs_are_refused(belief: float, availability: float) -> None:
    with pytest.raises(ValueError, match="must be in"):
        update(belief, True, availability)


beliefs = st.floats(min_value=0.0, max_value=1.0)
availabilities = st.floats(min_value=0.001, max_value=1.0)


@given(beliefs, st.booleans(), availabilities)
def test_belief_stays_in_the_clamp(belief: float, replied: bool, availability: float) -> None:
    assert BELIEF_MIN <= update(belief, replied, availability) <= BELIEF_MAX


@given(beliefs, availabilities)
def test_a_reply_never_lowers_belief_when_a_beats_the_down_rate(
    belief: float, availability: float
) -> None:
    clamped = min(BELIEF_MAX, max(BELIEF_MIN, belief))
    if availability > REPLY_IF_DOWN:
        assert update(belief, True, availability) >= clamped - 1e-12
        assert update(belief, False, availability) <= clamped + 1e-12


@given(
    st.floats(min_value=BELIEF_MIN, max_value=BELIEF_MAX), st.floats(0.1, 1.0), st.integers(1, 30)
)
def test_a_block_whose_addresses_all_answer_never_ends_down(
    belief: float, availability: float, rounds: int
) -> None:
    for _ in range(rounds):
        result = run_round(belief, availability, [True] * ROUND_BUDGET)
        assert result.state is not BlockState.DOWN
        assert result.sent <= ROUND_BUDGET
        belief = result.belief_up
    assert result.state is BlockState.UP


@given(st.floats(min_value=BELIEF_MIN, max_value=BELIEF_MAX), st.floats(0.5, 1.0))
def test_a_silent_dense_block_is_down_within_two_rounds(belief: float, availability: float) -> None:
    for _ in range(2):
        belief = run_round(belief, availability, [False] * ROUND_BUDGET).belief_up
    assert state_of(belief) is BlockState.DOWN


@given(st.lists(st.booleans(), max_size=40), st.floats(0.1, 1.0))
def test_round_never_exceeds_budget(outcomes: list[bool], availability: float) -> None:
    result = run_round(INITIAL_BELIEF_UP, availability, outcomes)
    assert result.sent <= min(ROUND_BUDGET, len(outcomes))
    assert isinstance(result, Round)
