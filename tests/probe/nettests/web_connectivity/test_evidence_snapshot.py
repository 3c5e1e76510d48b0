"""Every web connectivity verdict of the test data, byte for byte: the analysis table's rows and
OONI's QA measurements (``tests/testdata/ooni_qa``), each with its ``evidence`` strings, its
typed ``evidence_fields`` and OONI's ``blocking``/``accessible``.

The snapshot (``tests/testdata/evidence_snapshot.json``) pins what a refactor of the rules or
of the evidence must leave unchanged. A change of the rules that is meant changes it: rewrite
it with ``python -m tests.probe.nettests.web_connectivity.test_evidence_snapshot`` and bump
``ANALYSIS_VERSION`` (README, "analysis_version").
"""

from __future__ import annotations

import json
import sys
from typing import Any

from probe.core.evidence import with_fields
from probe.nettests.web_connectivity import analysis
from tests.helpers.paths import TESTDATA
from tests.probe.nettests.web_connectivity.test_analysis_table import ROWS
from tests.probe.nettests.web_connectivity.test_ooni_corpus import CORPUS, FILES

SNAPSHOT = TESTDATA / "evidence_snapshot.json"


def _entry(keys: dict[str, Any], url: str, cc: str | None) -> dict[str, Any]:
    result = analysis.analyze(keys, url, cc)
    return {"blocking": result["blocking"], "accessible": result["accessible"],
            "analysis": with_fields(result["analysis"])}


def snapshot() -> dict[str, Any]:
    """The verdict of every case, by case name."""
    cases: dict[str, Any] = {}
    for row in ROWS:
        url, keys = row.build()
        cases[f"table/{row.name}"] = _entry(keys, url, row.cc)
    for path in FILES:
        measurement = json.loads(path.read_text(encoding="utf-8"))
        cases[f"ooni_qa/{path.relative_to(CORPUS)}"] = _entry(
            measurement["test_keys"], measurement["input"], measurement["probe_cc"])
    return cases


def _text(cases: dict[str, Any]) -> str:
    return json.dumps(cases, ensure_ascii=False, indent=1, sort_keys=False) + "\n"


def test_every_verdict_and_its_evidence_are_as_recorded() -> None:
    cases = snapshot()
    assert len(cases) == len(ROWS) + len(FILES) and len(FILES) == 56
    recorded = SNAPSHOT.read_text(encoding="utf-8")
    assert _text(cases) == recorded  # byte for byte: strings, fields, key order


if __name__ == "__main__":
    SNAPSHOT.write_text(_text(snapshot()), encoding="utf-8")
    print(f"wrote {SNAPSHOT.name}", file=sys.stderr)
