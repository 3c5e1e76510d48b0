"""Fixtures of the lab: one emulated censoring network per test session, torn down at the end.

The lab needs root, iproute2, iptables and tc. Without them its tests skip with the reason,
except when ``CI=true``: there a skipped lab would hide a broken build, so they fail.
All selected scenarios run once, side by side, the first time a scenario test asks for its
outcome; each test then checks its own record. The session ends with a table of scenario,
expected and got.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator

import pytest

from tests.lab.lab import Lab, Outcome, format_table
from tests.lab.scenarios import BY_NAME, SCENARIOS
from tests.lab.topology import run

OUTCOMES = pytest.StashKey[list[Outcome]]()
WALL_TIME = pytest.StashKey[float]()


def lab_unavailable() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the lab needs root (network namespaces, iptables, tc)"
    for tool in ("ip", "iptables", "ip6tables", "tc"):
        if shutil.which(tool) is None:
            return f"the lab needs {tool} (Debian packages iproute2, iptables)"
    probe = f"kzlab-check-{secrets.token_hex(3)}"
    created = run("ip", "netns", "add", probe, check=False)
    run("ip", "netns", "del", probe, check=False)
    if created.returncode != 0:
        return f"cannot create network namespaces: {created.stderr.strip()}"
    return None


def when_unavailable(reason: str | None, ci: str | None) -> tuple[str, str] | None:
    """("skip" | "fail", message) for a lab that cannot run, or None when it can."""
    if reason is None:
        return None
    if ci == "true":
        return "fail", f"CI=true and the lab cannot run: {reason}"
    return "skip", reason


@pytest.fixture(scope="session")
def lab_capable() -> None:
    decision = when_unavailable(lab_unavailable(), os.environ.get("CI"))
    if decision is None:
        return
    action, message = decision
    if action == "fail":
        pytest.fail(message)
    pytest.skip(message)


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
