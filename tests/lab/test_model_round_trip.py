"""Every lab scenario's measurement, read by the typed model and written back byte for byte.

The probe's real command line measures each scenario of the emulated censoring network; the
JSON it prints must read as ``probe.core.model.Measurement`` and serialise back to the same
text, and its typed evidence (``analysis.evidence_fields``) must be the facts of its evidence
strings. A daemon round yields no single measurement and is left to ``test_scenarios``.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from probe.core.evidence import facts
from probe.core.model import Measurement
from tests.lab.lab import Outcome
from tests.lab.model import Round
from tests.lab.scenarios import SCENARIOS

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("scenario_name", [s.name for s in SCENARIOS
                                           if not isinstance(s.expect, Round)])
def test_the_measurement_round_trips_through_the_model(
    scenario_name: str, scenario_outcome: Callable[[str], Outcome]
) -> None:
    outcome = scenario_outcome(scenario_name)
    assert outcome.error is None, outcome.error
    assert outcome.measurement is not None
    model = Measurement.from_wire(outcome.measurement)
    assert json.dumps(model.to_wire(), ensure_ascii=False) == \
        json.dumps(outcome.measurement, ensure_ascii=False)
    assert model.test_name == outcome.measurement["test_name"]
    assert model.analysis is not None
    assert model.analysis.evidence_fields == facts(model.analysis.evidence or ())
