"""The ladder as evidence: causes and the backfilled start."""

from __future__ import annotations

import pytest

from collector.detect.ladder import cause_from_summary, classify, summarise_outage
from collector.detect.model import LadderReading


def rungs(**reachable: bool) -> dict[str, dict[str, bool]]:
    return {name: {"reachable": ok} for name, ok in reachable.items()}


@pytest.mark.parametrize(("rungs_", "gateway_known", "online", "cause"), [
    (rungs(gateway=True, resolver=True, domestic=True, foreign=True), True, True, "online"),
    (rungs(gateway=True, resolver=True, domestic=True, foreign=False), True, False,
     "international_cut"),
    (rungs(gateway=True, resolver=False, domestic=False, foreign=False), True, False,
     "isp_outage"),
    (rungs(gateway=False, resolver=False, foreign=False), True, False, "local_outage"),
    (rungs(resolver=False, foreign=False), False, False, "local_outage"),
    (rungs(gateway=True, foreign=False), True, False, "unknown"),
])
def test_classify(rungs_: dict[str, dict[str, bool]], gateway_known: bool, online: bool,
                  cause: str) -> None:
    assert classify(rungs_, gateway_known, online) == cause


@pytest.mark.parametrize(("summary", "online", "cause"), [
    ("online", True, "online"),
    ("international cut: gateway reachable, domestic hosts reachable, foreign hosts unreachable",
     False, "international_cut"),
    ("no connectivity: gateway unreachable, foreign hosts unreachable", False, "local_outage"),
    ("no connectivity: gateway reachable, resolver fails, foreign hosts unreachable", False,
     "isp_outage"),
])
def test_cause_from_the_probes_own_sentence(summary: str, online: bool, cause: str) -> None:
    assert cause_from_summary(summary, online) == cause


def reading(probe: str, t: float, online: bool, cause: str = "international_cut") -> LadderReading:
    return LadderReading(probe, "KZ", "AS1", t, online, cause if not online else "online")


def test_backfill_takes_each_probes_first_offline_reading_and_the_majority_cause() -> None:
    readings = [
        reading("a", 900, True), reading("a", 1000, False), reading("a", 1060, False),
        reading("a", 4000, True),
        reading("b", 950, True), reading("b", 1030, False, "local_outage"),
        reading("c", 980, True), reading("c", 1010, False), reading("c", 1070, False),
        reading("z", 500, False),  # another probe: ignored
        reading("a", 200, False),  # an earlier, unrelated outage of a: ignored
    ]
    summary = summarise_outage(readings, ["a", "b", "c"], heartbeat_start=990, until=5000,
                               max_backfill=600)
    assert summary.start == 1000
    assert summary.cause == "international_cut"
    assert dict(summary.causes) == {"international_cut": 2, "local_outage": 1}


def test_backfill_never_reaches_further_than_allowed() -> None:
    readings = [reading("a", 100, False), reading("a", 2000, False)]
    summary = summarise_outage(readings, ["a"], heartbeat_start=1500, until=5000,
                               max_backfill=600)
    assert summary.start == 2000


def test_no_readings_no_claims() -> None:
    summary = summarise_outage([], ["a"], heartbeat_start=0, until=100, max_backfill=600)
    assert summary.start is None and summary.cause == "unknown"
