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


@pytest.mark.parametrize("scenario_name", [s.name for s in SCENARIOS])
def test_scenario(scenario_name: str, scenario_outcome: Callable[[str], Outcome]) -> None:
    outcome = scenario_outcome(scenario_name)
    scenario = outcome.scenario
    assert outcome.error is None, outcome.error
    if isinstance(scenario.expect, Round):
        assert outcome.got == scenario.expect, (
            f"{scenario.about}: expected {describe(scenario.expect)}, got {describe(outcome.got)}"
            f"\n{outcome.log[-1500:]}")
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
