"""Where the collector's CPU goes per ingested measurement, stage by stage, before and now.

Run: ``python bench/ingest_stages.py [--database FILE_OR_DSN] [--batches 30] [--rounds 5]``

The measurements are ``bench/collector_scale.py``'s realistic ones (a real probe's
web_connectivity measurement of a 4 KiB page, about 7 KB of JSON). Each stage of the ingest
path runs alone in this process on batches of 100 and is timed in CPU time
(``time.process_time``, every thread of the process), so other work on the machine stretches
wall times but not these numbers: parsing the request body, validating (checks, the stored
document's serialization, its size), extracting detection's observation, compressing, the
store's write of a batch (its CPU; the wall time beside it includes the commit's fsync), and
what detection does with each stored measurement.

Two columns: **before**, detection reading every stored body back (decompress, parse,
extract), as it still does for rows stored without an observation; **now**, the observation
extracted at ingest from the document already parsed, stored with the row, and read by
detection instead (``collector.detect.observed``). The stages that differ run alternately,
``--rounds`` times, and each cell is their median, so a change in the machine's load falls on
both. Prints one table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import secrets
import statistics
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
from collector.detect import extract, observed  # noqa: E402
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


def median_us(pairs: list[tuple[Callable[[], Any], Callable[[], Any]]], n: int,
              rounds: int) -> list[tuple[float, float]]:
    """Per (before, now) pair of stage functions: their median CPU us per measurement over
    ``rounds`` alternated runs."""
    out = []
    for before, now in pairs:
        times: tuple[list[float], list[float]] = ([], [])
        for _ in range(rounds):
            times[0].append(cpu_us(before, n, 1))
            times[1].append(cpu_us(now, n, 1))
        out.append((statistics.median(times[0]), statistics.median(times[1])))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", help="store to write into (default: a new SQLite file)")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    generator = Generator(asyncio.run(template()))
    bodies = batches(generator, args.batches)
    limits = Limits()
    now = datetime.now(UTC)
    parsed = [parse_json(b)["measurements"] for b in bodies]
    n = BATCH * len(bodies)
    rows = [validate_batch(items, limits, now, "bench", "127.0.0.1", None) for items in parsed]
    documents = [r.body.encode() for batch in rows for r in batch]
    stored_documents = [json.loads(d) for d in documents]
    stored = [r.packed for batch in rows for r in batch]
    seen = [r.observation for batch in rows for r in batch]
    assert all(s is not None for s in stored) and all(o is not None for o in seen)
    bare = [[dataclasses.replace(r, uid=f"{r.uid}b", observation=None) for r in batch]
            for batch in rows]

    def nothing() -> None:
        return None

    def detection_before() -> None:
        for packed in stored:
            extract.observation(json.loads(unpack(packed or b"")), "bench")

    def detection_now() -> None:
        for text in seen:
            observed.decode(text or "", "bench")

    def extract_now() -> None:
        for m in stored_documents:
            observed.encode(extract.observation(m, "bench"))

    packing = cpu_us(lambda: [pack_utf8(d) for d in documents], n, 1)
    (parse, validation, extraction, detection) = median_us([
        (lambda: [parse_json(b) for b in bodies], nothing),
        (lambda: [validate_batch(items, limits, now, "bench", "127.0.0.1", None)
                  for items in parsed], nothing),
        (nothing, extract_now),
        (detection_before, detection_now),
    ], n, args.rounds)
    # Validation now includes the extraction: its cost without it, in both columns.
    checks = validation[0] - packing - extraction[1]
    with tempfile.TemporaryDirectory() as tmp:
        database = args.database or str(Path(tmp) / "stages.sqlite")
        write_before, wall_before = asyncio.run(store_write(database, bare))
    with tempfile.TemporaryDirectory() as tmp:
        database = args.database or str(Path(tmp) / "stages.sqlite")
        write_now, wall_now = asyncio.run(store_write(database, rows))
    stages = [
        ("parse the request body (strict JSON)", (parse[0], parse[0])),
        ("validate: checks, stored document, size", (checks, checks)),
        ("extract detection's observation (now: at ingest, from the parsed document)",
         extraction),
        ("compress the body (zstd, dictionary)", (packing, packing)),
        ("store: write a batch of 100 in one transaction", (write_before, write_now)),
        ("detection (before: decompress, parse, extract; now: read the stored observation)",
         detection),
    ]
    print(f"{n:,} measurements in batches of {BATCH}, {args.rounds} alternated rounds; "
          f"store: {'given' if args.database else 'a new SQLite file'}")
    print("| stage | before, CPU us per measurement | now |")
    print("|---|---:|---:|")
    for name, (before, after) in stages:
        print(f"| {name} | {before:,.0f} | {after:,.0f} |")
    total_before = sum(b for _, (b, _) in stages)
    total_now = sum(a for _, (_, a) in stages)
    print(f"| **sum of these stages** | **{total_before:,.0f}** | **{total_now:,.0f}** |")
    print(f"\nnow / before: {total_now / total_before:.2f}")
    print(f"store write wall time: {wall_before:,.0f} and {wall_now:,.0f} us per measurement "
          "(with the fsync)")
    print(f"one core at the cost now: {1e6 / total_now:,.0f} measurements/s; two: "
          f"{2e6 / total_now:,.0f}/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
