"""Every lab scenario: the probe, run on the scenario's access link, reports exactly what its
record expects.

The censor acts with real packets (iptables, tc, scapy), the sites and the control are real
servers in the world namespace, and the probe is the real command line. A check passes only
if ``analysis`` (verdict, layer, mechanism) and OONI's ``blocking``/``accessible`` are exactly
those of its record, and the evidence names what the censor did. A daemon round passes only if
the ladder's sentence, the verdicts the collector received and the count of measurements kept
for later are exactly those of its record.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.lab.lab import Outcome, describe
from tests.lab.model import Round
from tests.lab.scenarios import SCENARIOS

pytestmark = pytest.mark.lab


def check_paths(outcome: Outcome) -> None:
    """The round reports the ways it used: ``probe status`` names the collector's endpoint,
    path and whether it was a fallback, and the control that answered; the collector stored
    each measurement exactly once (one uid), naming the control that answered and the path
    to it."""
    paths = outcome.scenario.paths
    assert paths is not None and outcome.paths is not None
    assert "error" not in outcome.paths, outcome.paths
    last = outcome.paths["status"]["last_path"]
    stored = outcome.paths["stored"]
    controls = outcome.paths["controls"]
    if paths.reached is None:
        # Cut off: nothing stored, and ``probe status`` says every control is unreachable.
        assert last is None and stored == [], (last, stored)
        assert controls["blocked"] is True and controls["endpoint"] is None, controls
        return
    assert (controls["endpoint"], controls["path"], controls["blocked"]) == (
        *paths.control, False), controls
    assert (last["endpoint"], last["path"], last["fallback"]) == paths.reached, last
    assert len(stored) == len({row["uid"] for row in stored}) == 1, stored
    assert [(row["control"], row["path"]) for row in stored] == [paths.control], stored


@pytest.mark.parametrize("scenario_name", [s.name for s in SCENARIOS])
def test_scenario(scenario_name: str, scenario_outcome: Callable[[str], Outcome]) -> None:
    outcome = scenario_outcome(scenario_name)
    scenario = outcome.scenario
    assert outcome.error is None, outcome.error
    if isinstance(scenario.expect, Round):
        assert outcome.got == scenario.expect, (
            f"{scenario.about}: expected {describe(scenario.expect)}, got {describe(outcome.got)}"
            f"\n{outcome.log[-1500:]}")
        if scenario.paths is not None:
            check_paths(outcome)
        return
    assert outcome.measurement is not None
    keys = outcome.measurement["test_keys"]
    assert outcome.got == scenario.expect, (
        f"{scenario.about}: expected {describe(scenario.expect)}, got {describe(outcome.got)}; "
        f"evidence {keys['analysis']['evidence']}")
    evidence = " ".join(keys["analysis"]["evidence"])
    for fact in scenario.evidence:
        assert fact in evidence, f"{fact!r} not in the evidence: {evidence}"
    for fact in scenario.not_evidence:
        assert fact not in evidence, f"{fact!r} in the evidence: {evidence}"
    assert outcome.measurement["input"] == scenario.url
