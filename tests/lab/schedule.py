"""In which order the lab runs its scenarios, and which censor rules are in place meanwhile.

Scenarios aim at their own names and addresses, so most run side by side under all their
rules at once. An exclusive scenario's rules touch every connection, so it runs apart, only
with the scenarios under the very same rules (one group, the rules applied once). A group
whose rules cut only the mobile link (a mobile-only shutdown) disturbs nothing on home
broadband: it runs during the broadband scenarios, and the mobile ones run after it. Pure:
the plan is data, checked by ``test_scenario_table`` without root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tests.lab.model import CENSOR_MOBILE, Action, Iptables, Scenario


@dataclass(frozen=True, slots=True)
class Batch:
    """Scenarios probed side by side (``probes``) while the censor rules of ``rules`` are
    in place."""

    probes: tuple[Scenario, ...]
    rules: tuple[Scenario, ...]


def cuts_only_the_mobile_link(censor: tuple[Action, ...]) -> bool:
    """Every rule is bound to the censor's mobile interface ("-i mob" or "-o mob")."""
    return bool(censor) and all(
        isinstance(action, Iptables)
        and action.spec[:2] in (("-i", CENSOR_MOBILE), ("-o", CENSOR_MOBILE))
        for action in censor)


def plan(scenarios: Sequence[Scenario]) -> list[Batch]:
    """The batches that run ``scenarios``, each exactly once."""
    shared = [s for s in scenarios if not s.exclusive]
    groups: dict[tuple[Action, ...], list[Scenario]] = {}
    for scenario in scenarios:
        if scenario.exclusive:
            groups.setdefault(scenario.censor, []).append(scenario)
    mobile_cuts = [g for censor, g in groups.items() if cuts_only_the_mobile_link(censor)]
    others = [g for censor, g in groups.items() if not cuts_only_the_mobile_link(censor)]
    batches: list[Batch] = []
    if mobile_cuts:
        first, *rest = mobile_cuts
        broadband = [s for s in shared if s.link != "mobile"]
        # The cut's probes wait out timeouts: they start first, so the others overlap them.
        batches.append(Batch((*first, *broadband), (*broadband, first[0])))
        mobile = tuple(s for s in shared if s.link == "mobile")
        if mobile:
            batches.append(Batch(mobile, mobile))
        others = [*rest, *others]
    elif shared:
        batches.append(Batch(tuple(shared), tuple(shared)))
    batches += [Batch(tuple(group), (group[0],)) for group in others]
    return batches
