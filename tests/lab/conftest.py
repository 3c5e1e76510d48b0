"""Fixtures of the lab: one emulated censoring network per test session, torn down at the end.

The lab needs root, iproute2, iptables (and ip6tables) and tc. Without them its tests skip
with the reason, except when ``CI=true``: there a skipped lab would hide a broken build, so
they fail (``tests.helpers.netns.require``).
All selected scenarios run once, side by side, the first time a scenario test asks for its
outcome; each test then checks its own record. The session ends with a table of scenario,
expected and got.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from tests.helpers.netns import require
from tests.lab.lab import Lab, Outcome, format_table
from tests.lab.scenarios import BY_NAME, SCENARIOS

OUTCOMES = pytest.StashKey[list[Outcome]]()
WALL_TIME = pytest.StashKey[float]()


@pytest.fixture(scope="session")
def lab_capable() -> None:
    require("iptables", "ip6tables", "tc")


def _selected_scenarios(session: pytest.Session) -> list[str]:
    names = []
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "scenario_name" in callspec.params:
            names.append(callspec.params["scenario_name"])
    return names


@pytest.fixture(scope="session")
def lab(lab_capable: None, request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The session's lab, able to host every selected scenario (all, if none selected)."""
    names = _selected_scenarios(request.session) or [s.name for s in SCENARIOS]
    names += ["success_https"]  # the topology tests use it
    with Lab([BY_NAME[n] for n in dict.fromkeys(names)]) as running:
        yield running


@pytest.fixture(scope="session")
def scenario_outcome(lab: Lab, request: pytest.FixtureRequest) -> Callable[[str], Outcome]:
    """``scenario_outcome(name)``: the probe's outcome for a scenario (all run on first call)."""
    outcomes: dict[str, Outcome] = {}

    def get(name: str) -> Outcome:
        if not outcomes:
            started = time.monotonic()
            for outcome in lab.run():
                outcomes[outcome.scenario.name] = outcome
            request.config.stash[OUTCOMES] = list(outcomes.values())
            request.config.stash[WALL_TIME] = time.monotonic() - started
        return outcomes[name]

    return get


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    outcomes = config.stash.get(OUTCOMES, None)
    if not outcomes:
        return
    terminalreporter.section("lab scenarios")
    for line in format_table(outcomes).splitlines():
        terminalreporter.write_line(line)
    passed = sum(o.passed for o in outcomes)
    terminalreporter.write_line(f"{passed}/{len(outcomes)} as expected; scenarios ran in "
                                f"{config.stash.get(WALL_TIME, 0.0):.1f}s")
