"""Detection reads the typed evidence; for measurements recorded before it, the re-run verdict's.

A measurement written before ``analysis.evidence_fields`` existed must give detection exactly
the observation the same measurement with the fields gives: the fields come from the verdict
re-run on the recorded observations (``collector.reanalysis.evidence_of``), never from the
evidence strings. Checked on every case of the analysis table (web connectivity) and on real
throttling test keys. A recorded verdict that the current rules no longer reach lends no
facts (no fingerprint is invented for it).
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from collector.detect.extract import observation
from collector.detect.model import Run
from collector.reanalysis import evidence_of
from probe.core.evidence import Evidence
from probe.core.measurement import envelope
from probe.nettests.throttling import analysis as throttling_analysis
from probe.nettests.web_connectivity import analysis
from tests.probe.nettests.throttling.test_analysis import flow
from tests.probe.nettests.web_connectivity.test_analysis_table import ROWS

STARTED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _measure(test_name: str, url: str, keys: dict[str, Any], cc: str = "KZ") -> dict[str, Any]:
    return envelope(test_name=test_name, input_=url, test_keys=keys, started=STARTED,
                    runtime=1.0, cc=cc, asn="AS9198", probe_id="p1")


def _without_fields(m: dict[str, Any]) -> dict[str, Any]:
    old = copy.deepcopy(m)
    del old["test_keys"]["analysis"]["evidence_fields"]
    return old


def test_old_web_measurements_give_the_same_observation_as_new_ones() -> None:
    fingerprints = 0
    for row in ROWS:
        url, keys = row.build()
        m = _measure("web_connectivity", url, {**keys, **analysis.analyze(keys, url, row.cc)},
                     row.cc or "KZ")
        new, old = observation(m, "p1"), observation(_without_fields(m), "p1")
        assert new == old, row.name
        assert evidence_of(_without_fields(m)) == evidence_of(m), row.name
        fingerprints += isinstance(new, Run) and new.fingerprint is not None
    assert fingerprints >= 5  # blockpages and interception issuers among them


def test_old_throttling_measurements_give_the_same_slowdown() -> None:
    flows = [flow(role, i, rate) for i in range(3)
             for role, rate in (("target", 4e5), ("baseline", 8e6))]
    keys: dict[str, Any] = {"flows": flows, "sni_ab": None}
    keys.update(throttling_analysis.analyze(keys))
    assert keys["analysis"]["verdict"] == "throttled"
    m = _measure("throttling", "https://www.azattyq.org/", keys)
    new, old = observation(m, "p1"), observation(_without_fields(m), "p1")
    assert isinstance(new, Run) and new.slowdown is not None and new.slowdown > 10
    assert new == old


def test_a_verdict_the_rules_no_longer_reach_lends_no_facts() -> None:
    blockpage = next(r for r in ROWS if r.name.startswith("K9"))
    url, keys = blockpage.build()
    m = _measure("web_connectivity", url, {**keys, **analysis.analyze(keys, url, "KZ")})
    assert observation(m, "p1").fingerprint is not None  # type: ignore[union-attr]
    old = _without_fields(m)
    old["test_keys"]["analysis"]["mechanism"] = "diff"  # what an older rule said, say
    assert evidence_of(old) == Evidence()
    run = observation(old, "p1")
    assert isinstance(run, Run) and run.fingerprint is None and run.mechanism == "diff"


def test_detection_never_reads_the_evidence_strings() -> None:
    from pathlib import Path

    import collector

    root = Path(collector.__file__).parent
    for path in root.rglob("*.py"):
        assert "facts(" not in path.read_text(), path  # the probe-side builder of the fields
    # Detection's one reader of measurements does not read the strings at all.
    assert '"evidence"' not in (root / "detect" / "extract.py").read_text()
