"""The per-day byte budget: counts survive a restart, a new UTC day starts from zero."""

from __future__ import annotations

import json
from pathlib import Path

from probe.daemon.budget import ByteBudget

DAY = 86400.0
NOON = 20000 * DAY + 12 * 3600  # a fixed UTC noon


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_charges_accumulate_and_survive_a_restart(tmp_path: Path) -> None:
    path, clock = tmp_path / "budget.json", Clock(NOON)
    budget = ByteBudget(path, 1_000_000, clock)
    assert budget.allows(1_000_000)
    budget.charge(600_000)
    assert budget.remaining() == 400_000
    again = ByteBudget(path, 1_000_000, clock)
    assert again.remaining() == 400_000
    assert not again.allows(524_288)


def test_a_new_day_starts_fresh(tmp_path: Path) -> None:
    path, clock = tmp_path / "budget.json", Clock(NOON)
    budget = ByteBudget(path, 1_000_000, clock)
    budget.charge(900_000)
    clock.now += 12 * 3600  # past midnight UTC
    assert budget.remaining() == 1_000_000
    assert ByteBudget(path, 1_000_000, clock).remaining() == 1_000_000


def test_round_cadence(tmp_path: Path) -> None:
    path, clock = tmp_path / "budget.json", Clock(NOON)
    budget = ByteBudget(path, 1_000_000, clock)
    assert budget.due(6 * 3600)
    budget.mark_round()
    clock.now += 3600
    assert not ByteBudget(path, 1_000_000, clock).due(6 * 3600)
    clock.now += 5 * 3600
    assert ByteBudget(path, 1_000_000, clock).due(6 * 3600)


def test_an_unreadable_file_starts_a_fresh_day(tmp_path: Path) -> None:
    path = tmp_path / "budget.json"
    path.write_text("{not json")
    budget = ByteBudget(path, 1000, Clock(NOON))
    assert budget.remaining() == 1000 and budget.last_round is None
    budget.charge(10)
    assert json.loads(path.read_text())["used"] == 10


def test_without_a_file_it_counts_in_memory() -> None:
    budget = ByteBudget(None, 1000, Clock(NOON))
    budget.charge(400)
    assert budget.remaining() == 600
