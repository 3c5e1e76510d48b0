"""Cost of the typed seam: the measurement model, the typed evidence, re-analysis.

    python -m bench.measurement_model [--repeat 20]

Measurements: OONI's 56 QA files and the analysis table's cases wrapped as the probe wraps
them (with ``evidence_fields``). For each, per measurement (median of ``--repeat`` passes):

* ``json.loads`` + ``json.dumps`` alone (the floor any reader pays);
* ``Measurement.from_wire`` + ``to_wire`` (the typed model, round trip);
* detection's evidence for a measurement with ``evidence_fields`` (read the fields) and for
  one recorded before them (the verdict re-run on the observations,
  ``collector.reanalysis.evidence_of``);
* ``collector reanalyze`` on a SQLite store holding the table's cases as version 1 verdicts:
  measurements per second, writing.

Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from collector.api.validate import validate  # noqa: E402
from collector.config import Limits  # noqa: E402
from collector.reanalysis import evidence_of  # noqa: E402
from collector.reanalyze import reanalyze  # noqa: E402
from collector.store import TIME_FORMAT, open_store  # noqa: E402
from probe.core.measurement import envelope  # noqa: E402
from probe.core.model import Measurement  # noqa: E402
from probe.nettests.web_connectivity import analysis  # noqa: E402
from tests.probe.nettests.web_connectivity.test_analysis_table import ROWS  # noqa: E402

CORPUS = REPO / "tests" / "testdata" / "ooni_qa"


def _table(started: datetime) -> list[dict[str, Any]]:
    out = []
    for row in ROWS:
        url, keys = row.build()
        keys = {**keys, **analysis.analyze(keys, url, row.cc)}
        out.append(envelope(test_name="web_connectivity", input_=url, test_keys=keys,
                            started=started, runtime=1.0, cc=row.cc or "KG", asn="AS8449",
                            probe_id="p1"))
    return out


def _without_fields(m: dict[str, Any]) -> dict[str, Any]:
    old = copy.deepcopy(m)
    verdict = old["test_keys"]["analysis"]
    verdict.pop("evidence_fields", None)
    verdict.pop("analysis_version", None)
    return old


def _per_item(items: list[Any], work: Callable[[Any], object], repeat: int) -> float:
    """Median microseconds per item over ``repeat`` passes."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for item in items:
            work(item)
        times.append((time.perf_counter() - start) / len(items))
    return statistics.median(times) * 1e6


async def _reanalyze_rate(documents: list[dict[str, Any]]) -> tuple[int, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_store(str(Path(tmp) / "bench.sqlite"))
        try:
            now = datetime.now(UTC)
            rows = [validate(_without_fields(m), Limits(), now, "p1") for m in documents]
            await store.add_measurements(rows)
            start = time.perf_counter()
            report = await reanalyze(store, (now - timedelta(days=1)).strftime(TIME_FORMAT))
            elapsed = time.perf_counter() - start
        finally:
            await store.close()
    return report.stored, elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    ooni = [json.loads(p.read_text()) for p in sorted(CORPUS.glob("*/*.json"))]
    started = datetime.now(UTC) - timedelta(hours=1)
    table = _table(started)
    texts = {"OONI QA corpus": [json.dumps(m) for m in ooni],
             "analysis table (probe's)": [json.dumps(m) for m in table]}
    print("| measurements | n | mean bytes | json loads+dumps µs | model from_wire+to_wire µs |")
    print("|---|---|---|---|---|")
    for name, items in texts.items():
        parsed = [json.loads(t) for t in items]
        floor = _per_item(items, lambda t: json.dumps(json.loads(t)), args.repeat)
        model = _per_item(parsed, lambda d: Measurement.from_wire(d).to_wire(), args.repeat)
        mean = statistics.mean(len(t.encode()) for t in items)
        print(f"| {name} | {len(items)} | {mean:,.0f} | {floor:,.0f} | {model:,.0f} |")
    old = [_without_fields(m) for m in table]
    with_fields = _per_item(table, evidence_of, args.repeat)
    rerun = _per_item(old, evidence_of, args.repeat)
    print()
    print("| detection's evidence per measurement | µs |")
    print("|---|---|")
    print(f"| with `evidence_fields` (read) | {with_fields:,.0f} |")
    print(f"| recorded before them (verdict re-run) | {rerun:,.0f} |")
    copies = []
    for _ in range(10):
        for m in table:
            c = copy.deepcopy(m)
            c["measurement_uid"] = f"{c['measurement_uid'][:-8]}{len(copies):08d}"
            copies.append(c)
    stored, elapsed = asyncio.run(_reanalyze_rate(copies))
    print()
    print("| reanalyze (SQLite, writing) | measurements | seconds | per second |")
    print("|---|---|---|---|")
    print(f"| version 1 verdicts of the table x10 | {stored} | {elapsed:.2f} | "
          f"{stored / elapsed:,.0f} |")


if __name__ == "__main__":
    main()
