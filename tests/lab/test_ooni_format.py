"""Every lab scenario's measurement, read by OONI's own loader (``oonidata``).

The probe's real command line measures each scenario of the emulated censoring network; the
JSON it prints must load with OONI's loader and, for web connectivity, carry no key OONI does
not define without the ``x_`` prefix (``tests.helpers.ooni_format``). A daemon round yields
no single measurement and is left to ``test_scenarios``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.helpers import ooni_format
from tests.lab.lab import Outcome
from tests.lab.model import Round
from tests.lab.scenarios import SCENARIOS

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("scenario_name", [s.name for s in SCENARIOS
                                           if not isinstance(s.expect, Round)])
def test_the_measurement_loads_with_oonis_loader(
    scenario_name: str, scenario_outcome: Callable[[str], Outcome]
) -> None:
    outcome = scenario_outcome(scenario_name)
    assert outcome.error is None, outcome.error
    assert outcome.measurement is not None
    loaded = ooni_format.load(outcome.measurement)
    assert loaded.test_name == outcome.measurement["test_name"]
    if loaded.test_name == "web_connectivity":
        assert loaded.test_keys.blocking == outcome.measurement["test_keys"]["blocking"]
        assert ooni_format.problems(outcome.measurement) == []
