"""Trinocular-style belief that a /24 block is up, updated one probe at a time.

Why: a volunteer's silence cannot tell a network cut from a power cut at home. A block of
addresses that answered before and stops answering, seen from outside the country, can. This
module is the pure inference: it never sends a packet, so it is tested with exact numbers and
versioned like the other verdicts.

Model (Quan, Heidemann, Pradkin, "Trinocular: Understanding Internet Reliability Through
Adaptive Probing", SIGCOMM 2013; constants as implemented in CAIDA/trinarkular
``lib/trinarkular_prober.c``, IODA's production prober):

* Only addresses that answered before (the block's ever-responsive set E(b)) are probed. The
  block's availability A is the share of probes to E(b) that were answered while the block was
  up; it is measured per block (``estimate_availability``).
* P(reply | up) = A. P(reply | down) = (1 - 0.01) / 256: a down block still answers with a
  tiny chance (spoofed or misrouted replies).
* Each probe updates the belief B = P(up) by Bayes' rule:
  reply:     B' = A B / (A B + P(r|down) (1 - B))
  no reply:  B' = (1 - A) B / ((1 - A) B + (1 - P(r|down)) (1 - B))
  and B' is clamped to [0.01, 0.99] so that no single packet makes the model certain forever.
* State: ``up`` when B > 0.9, ``down`` when B < 0.1, ``uncertain`` otherwise. A new block
  starts at B = 0.99.
* Adaptive rounds: a round sends one probe; it stops as soon as the state is decisive and the
  last reply agrees with it (a reply for ``up``, silence for ``down``). Otherwise it keeps
  probing, up to a budget of 14 probes per round. So a block that behaves as expected costs one
  probe per round, and probes are spent only where the belief is in doubt.

Kuzot's one departure: A is capped at 0.99 (``MAX_AVAILABILITY``). With A = 1 one lost packet
would take B from 0.99 to the floor at once; with the cap it drops to about 0.5 (uncertain)
and the round probes again, which is what a single random loss deserves. Blocks whose A is
below 0.10 are too sparse to judge (trinarkular leaves them out too): ``probeable`` says so.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

MODEL_VERSION = 1
"""Bumped whenever a constant or rule below changes, so stored states say which model made them."""

BELIEF_MIN = 0.01
BELIEF_MAX = 0.99
INITIAL_BELIEF_UP = 0.99
UP_ABOVE = 0.9
DOWN_BELOW = 0.1
REPLY_IF_DOWN = (1.0 - 0.01) / 256.0
MIN_AVAILABILITY = 0.10
MAX_AVAILABILITY = 0.99
ROUND_BUDGET = 14


class BlockState(enum.StrEnum):
    """What the belief says about a block."""

    UP = "up"
    DOWN = "down"
    UNCERTAIN = "uncertain"


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def estimate_availability(answered: int, sent: int) -> float | None:
    """A(E(b)): the share of probes to ever-responsive addresses that were answered.

    Returns ``None`` when nothing was sent yet (no estimate), else the share capped at
    ``MAX_AVAILABILITY`` (see the module docstring). Counts must satisfy 0 <= answered <= sent.
    """
    if sent < 0 or answered < 0 or answered > sent:
        raise ValueError(f"need 0 <= answered <= sent, got answered={answered} sent={sent}")
    if sent == 0:
        return None
    return min(MAX_AVAILABILITY, answered / sent)


def probeable(availability: float | None) -> bool:
    """Whether a block answers often enough to be judged (A >= 0.10, as trinarkular)."""
    return availability is not None and availability >= MIN_AVAILABILITY


def update(belief_up: float, replied: bool, availability: float) -> float:
    """Bayes update of P(up) after one probe; the result is clamped to [0.01, 0.99]."""
    if not 0.0 <= belief_up <= 1.0:
        raise ValueError(f"belief must be in [0, 1], got {belief_up}")
    if not 0.0 < availability <= 1.0:
        raise ValueError(f"availability must be in (0, 1], got {availability}")
    a = min(availability, MAX_AVAILABILITY)
    if replied:
        up, down = a * belief_up, REPLY_IF_DOWN * (1.0 - belief_up)
    else:
        up, down = (1.0 - a) * belief_up, (1.0 - REPLY_IF_DOWN) * (1.0 - belief_up)
    return _clamp(up / (up + down), BELIEF_MIN, BELIEF_MAX)


def state_of(belief_up: float) -> BlockState:
    """``up`` above 0.9, ``down`` below 0.1, ``uncertain`` between."""
    if belief_up > UP_ABOVE:
        return BlockState.UP
    if belief_up < DOWN_BELOW:
        return BlockState.DOWN
    return BlockState.UNCERTAIN


@dataclass(frozen=True, slots=True)
class Round:
    """One probing round of one block: the belief so far and the probes spent.

    The prober asks ``wants_probe``, sends one probe, and feeds the outcome to ``observe``;
    this keeps the rule pure and the I/O outside.
    """

    belief_up: float
    availability: float
    budget: int = ROUND_BUDGET
    sent: int = 0
    last_replied: bool | None = None

    @property
    def state(self) -> BlockState:
        return state_of(self.belief_up)

    @property
    def wants_probe(self) -> bool:
        """True until the state is decisive and the last reply agrees, or the budget is spent."""
        if self.sent >= self.budget:
            return False
        if self.last_replied is None:
            return True
        state = self.state
        agrees = (state is BlockState.UP and self.last_replied) or (
            state is BlockState.DOWN and not self.last_replied
        )
        return not agrees

    def observe(self, replied: bool) -> Round:
        if not self.wants_probe:
            raise ValueError("the round is over; start a new one")
        return Round(
            belief_up=update(self.belief_up, replied, self.availability),
            availability=self.availability,
            budget=self.budget,
            sent=self.sent + 1,
            last_replied=replied,
        )


def run_round(
    belief_up: float, availability: float, outcomes: Iterable[bool], budget: int = ROUND_BUDGET
) -> Round:
    """Play a round against a sequence of probe outcomes (True = answered); stops by the rule.

    Outcomes beyond the stopping point are not consumed. If the outcomes run out first, the
    round ends where it is (as a prober that lost its targets would).
    """
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    current = Round(belief_up=belief_up, availability=availability, budget=budget)
    iterator = iter(outcomes)
    while current.wants_probe:
        outcome = next(iterator, None)
        if outcome is None:
            break
        current = current.observe(outcome)
    return current
