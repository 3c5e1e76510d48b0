"""Detection's CPU per stored measurement: from the observation stored at ingest, or the body.

Run: ``python bench/detection_feed.py [--rows 12000] [--rounds 2]``

A SQLite store is filled with ``bench/collector_scale.py``'s realistic measurements (about
7 KB of JSON each) through the store's write path, with their observations as validation
stores them (``collector.detect.observed``); a copy has the column emptied, as a store whose
rows were written before it existed. The real ``collector.pipeline.Pipeline`` then catches up
on each from cursor 0, alternately, ``--rounds`` times (each on a fresh copy), and the CPU time
of this process (``time.process_time``: every thread) per measurement is printed: reading the
feed, decompressing and parsing bodies or decoding observations, and everything the engine
does with them, which is the same for both. Asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collector_scale import Generator, fill, template  # noqa: E402
from collector.detect.params import DetectionConfig  # noqa: E402
from collector.detect.windows import Calendar  # noqa: E402
from collector.metrics.detection import DetectionMetrics, EventSnapshot  # noqa: E402
from collector.pipeline import Pipeline  # noqa: E402
from collector.store.sqlite import SQLiteStore  # noqa: E402


async def catch_up(path: str, rows: int) -> float:
    """CPU us per measurement of a fresh pipeline catching up on the store at ``path``."""
    store = await SQLiteStore.open(path)
    try:
        pipeline = Pipeline(store, DetectionConfig(), Calendar(),
                            DetectionMetrics(CollectorRegistry()), EventSnapshot(),
                            clock=time.time)
        await pipeline.start()
        started = time.process_time()
        while True:
            await pipeline.run_once(time.time())
            if pipeline.caught_up:
                break
        return 1e6 * (time.process_time() - started) / rows
    finally:
        await store.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=12_000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the fleet's monitor outage, logged at every start
    base = asyncio.run(template())
    with tempfile.TemporaryDirectory() as tmp:
        stored, bodies = str(Path(tmp) / "stored.sqlite"), str(Path(tmp) / "bodies.sqlite")
        asyncio.run(fill(stored, Generator(base), args.rows, base, 2))
        shutil.copy(stored, bodies)
        with sqlite3.connect(bodies) as db:
            db.execute("UPDATE measurements SET observation = NULL")
        db.close()
        results: dict[str, list[float]] = {"stored observation": [], "body": []}
        for _ in range(args.rounds):
            for name, path in (("stored observation", stored), ("body", bodies)):
                run = path + ".run"
                shutil.copy(path, run)
                results[name].append(asyncio.run(catch_up(run, args.rows)))
    print(f"{args.rows:,} measurements, {args.rounds} alternated rounds")
    print("| detection reads | CPU us per measurement, each round |")
    print("|---|---:|")
    for name, values in results.items():
        print(f"| {name} | {', '.join(f'{v:,.0f}' for v in values)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
