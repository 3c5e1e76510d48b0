"""What a store's write costs per measurement when uploads are committed alone or in groups.

Run: ``python bench/commit_groups.py [--stored 20000] [--rounds 5] [--postgres | --dsn DSN]``

Uploads of 100 of the scale bench's realistic measurements (``bench/collector_scale.py``,
compressed and with their observation, as the ingest's workers hand them over) are given to
the store ``size`` at a time, for each group size in turn and alternated ``--rounds`` times,
on a store already holding ``--stored`` rows:

* **SQLite**: the uploads of a group are queued together, so the writer commits them in one
  transaction (what ``ingest.commit_wait`` lets it gather under load; alone, each upload was
  its own commit). CPU of this process per measurement (the writer's thread included) and the
  bytes it wrote per measurement (the WAL, and the checkpointer's copies of it).
* **PostgreSQL**: "alone" is each upload in its own transaction, on the pool's connections at
  once (the store without ``coming``, as before groups); a group is one transaction
  (``collector.store.postgres_groups``). CPU of this process and of the server's process
  tree (from ``/proc``, so the server must run on this machine) per measurement.

Prints one table of medians; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collector_ingest import cpu_seconds  # noqa: E402
from bench.collector_scale import Generator, server_pid, template  # noqa: E402
from bench.throwaway_postgres import throwaway_database  # noqa: E402
from collector.store import Store, StoredMeasurement, WritesComing, open_store  # noqa: E402

BATCH = 100
SIZES = (1, 3, 6)
UPLOADS = 60  # per round and group size: 6,000 measurements


def written_bytes() -> int:
    """Bytes this process has handed to ``write``/``pwrite`` so far (``/proc/self/io``'s
    ``wchar``): the WAL's frames and the checkpointer's copies into the database file."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


class Uploads:
    """Packed uploads of the scale bench, each made once; their uids carry a prefix of this
    run, so that a database kept from another run stores them too."""

    def __init__(self, generator: Generator) -> None:
        self.generator = generator
        self.prefix = f"g{secrets.token_hex(4)}-"

    def next(self) -> list[StoredMeasurement]:
        first = self.generator.made
        self.generator.made += BATCH
        return [dataclasses.replace(row, uid=self.prefix + row.uid)
                for row in (self.generator.row(first + i, packed=True) for i in range(BATCH))]


async def measure(store: Store, uploads: Uploads, size: int,
                  other: Callable[[], float], scale: float) -> tuple[float, float]:
    """(this process's CPU, ``other``'s growth times ``scale``) per measurement for
    ``UPLOADS`` uploads given to ``store`` ``size`` at a time."""
    groups = [[uploads.next() for _ in range(size)] for _ in range(UPLOADS // size)]
    count = sum(len(u) for g in groups for u in g)
    cpu, before = time.process_time(), other()
    for group in groups:
        await asyncio.gather(*(store.add_measurements(u) for u in group))
    spent = time.process_time() - cpu
    return 1e6 * spent / count, scale * (other() - before) / count


async def run(database: str, stored: int, rounds: int, postgres: bool) -> None:
    generator = Generator(await template())
    uploads = Uploads(generator)
    # PostgreSQL before groups: the store without the ingest's count writes each upload
    # alone. With it (and no wait: every upload here is queued at once) a group is one.
    other, scale = (lambda: float(written_bytes())), 1.0
    if postgres:
        server = await server_pid(database)
        if server is None:
            raise SystemExit("the PostgreSQL server must run on this machine (its CPU is read "
                             "from /proc)")
        other, scale = (lambda: cpu_seconds(server)), 1e6
    alone = await open_store(database)
    grouped = await open_store(database, coming=WritesComing()) if postgres else alone
    try:
        while generator.made < stored:
            await alone.add_measurements(uploads.next())
        results: dict[int, list[tuple[float, float]]] = {size: [] for size in SIZES}
        for _ in range(rounds):
            for size in SIZES:
                store = alone if size == 1 else grouped
                results[size].append(await measure(store, uploads, size, other, scale))
    finally:
        await alone.close()
        if grouped is not alone:
            await grouped.close()
    other = "server CPU, us" if postgres else "bytes written"
    print(f"| uploads of {BATCH} a transaction | this process's CPU, us | {other} |")
    print("|---:|---:|---:|")
    for size, cells in results.items():
        print(f"| {size} | {statistics.median(c[0] for c in cells):.1f} | "
              f"{statistics.median(c[1] for c in cells):,.0f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--postgres", action="store_true",
                        help="a throwaway PostgreSQL cluster instead of SQLite")
    parser.add_argument("--dsn", help="an existing PostgreSQL database instead")
    args = parser.parse_args()
    if args.dsn:
        asyncio.run(run(args.dsn, args.stored, args.rounds, True))
    elif args.postgres:
        with throwaway_database(parser, "groups") as dsn:
            asyncio.run(run(dsn, args.stored, args.rounds, True))
    else:
        with tempfile.TemporaryDirectory(prefix="kuzot-groups-") as tmp:
            asyncio.run(run(str(Path(tmp) / "groups.sqlite"), args.stored, args.rounds, False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
