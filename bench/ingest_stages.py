"""Where the collector's CPU goes per ingested measurement, stage by stage.

Run: ``python bench/ingest_stages.py [--database FILE_OR_DSN] [--batches 30]``

The measurements are ``bench/collector_scale.py``'s realistic ones (a real probe's
web_connectivity measurement of a 4 KiB page, about 7 KB of JSON). Each stage of the ingest
path runs alone in this process on batches of 100 and is timed in CPU time
(``time.process_time``, every thread of the process), so other work on the machine stretches
wall times but not these numbers: parsing the request body, validating (checks, the stored
document's serialization, its size), compressing, the store's write of a batch (its CPU;
the wall time beside it includes the commit's fsync), and what detection does with each
stored measurement (decompress, parse, extract its observation). The HTTP server, the
metrics and the event loop are what the collector's CPU per measurement in
``collector_scale.py`` adds to these. Prints one table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collector_scale import Generator, template  # noqa: E402
from collector.api.validate import parse_json, validate_batch  # noqa: E402
from collector.config import Limits  # noqa: E402
from collector.detect import extract  # noqa: E402
from collector.store import StoredMeasurement, open_store  # noqa: E402
from collector.store.body import pack_utf8, unpack  # noqa: E402

BATCH = 100


def cpu_us(work: Callable[[], Any], measurements: int, repeat: int) -> float:
    """CPU microseconds per measurement of ``work`` (which handles ``measurements``)."""
    started = time.process_time()
    for _ in range(repeat):
        work()
    return 1e6 * (time.process_time() - started) / (measurements * repeat)


def batches(generator: Generator, count: int) -> list[bytes]:
    """Request bodies of ``BATCH`` measurements made now (validation refuses old times)."""
    now = datetime.now(UTC)
    out = []
    for b in range(count):
        docs = []
        for i in range(BATCH):
            index = b * BATCH + i
            text, columns = generator.document(index, f"stage{secrets.token_hex(6)}{index}")
            moment = now - timedelta(seconds=index)
            docs.append(text.replace(columns["start_time"], moment.strftime("%Y-%m-%d %H:%M:%S")))
        out.append(('{"measurements":[' + ",".join(docs) + "]}").encode())
    return out


async def store_write(database: str, rows: list[list[StoredMeasurement]]) -> tuple[float, float]:
    """(CPU us, wall us) per measurement of ``add_measurements`` on packed batches."""
    store = await open_store(database)
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        for batch in rows:
            await store.add_measurements(batch)
        count = sum(len(b) for b in rows)
        return (1e6 * (time.process_time() - cpu) / count,
                1e6 * (time.perf_counter() - wall) / count)
    finally:
        await store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="store to write into (default: a new SQLite file)")
    parser.add_argument("--batches", type=int, default=30)
    args = parser.parse_args()
    generator = Generator(asyncio.run(template()))
    bodies = batches(generator, args.batches)
    limits = Limits()
    now = datetime.now(UTC)
    repeat = 1
    parsed = [parse_json(b)["measurements"] for b in bodies]
    n = BATCH * len(bodies)
    stages: list[tuple[str, float]] = []
    stages.append(("parse the request body (strict JSON)",
                   cpu_us(lambda: [parse_json(b) for b in bodies], n, repeat)))
    rows = [validate_batch(items, limits, now, "bench", "127.0.0.1", None) for items in parsed]
    documents = [r.body.encode() for batch in rows for r in batch]
    packing = cpu_us(lambda: [pack_utf8(d) for d in documents], n, repeat)
    validation = cpu_us(lambda: [validate_batch(items, limits, now, "bench", "127.0.0.1", None)
                                 for items in parsed], n, repeat)
    stages.append(("validate: checks, stored document, size (without compression)",
                   validation - packing))
    stages.append(("compress the body (zlib, dictionary)", packing))
    with tempfile.TemporaryDirectory() as tmp:
        database = args.database or str(Path(tmp) / "stages.sqlite")
        write_cpu, write_wall = asyncio.run(store_write(database, rows))
    stages.append(("store: write a batch of 100 in one transaction", write_cpu))
    stored = [r.packed for batch in rows for r in batch]
    assert all(s is not None for s in stored)
    stages.append(("detection: decompress the stored body",
                   cpu_us(lambda: [unpack(s) for s in stored if s is not None], n, repeat)))
    texts = [unpack(s) for s in stored if s is not None]
    stages.append(("detection: parse it", cpu_us(lambda: [json.loads(t) for t in texts], n,
                                                 repeat)))
    documents_ = [json.loads(t) for t in texts]
    stages.append(("detection: extract the observation",
                   cpu_us(lambda: [extract.observation(d, "bench") for d in documents_], n,
                          repeat)))
    print(f"{n:,} measurements in batches of {BATCH}; store: "
          f"{'given' if args.database else 'a new SQLite file'}")
    print("| stage | CPU us per measurement |")
    print("|---|---:|")
    for name, value in stages:
        print(f"| {name} | {value:,.0f} |")
    total = sum(v for _, v in stages)
    print(f"| **sum of these stages** | **{total:,.0f}** |")
    print(f"\nstore write wall time: {write_wall:,.0f} us per measurement (with the fsync)")
    print(f"one core at this cost: {1e6 / total:,.0f} measurements/s; two: "
          f"{2e6 / total:,.0f}/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
