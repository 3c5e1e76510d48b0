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
  (``collector.store.postgres_groups``). CPU of this process and of the server's processes
  (from ``/proc``, so the server must run on this machine) per measurement.

Prints one table of medians; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import glob
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collector_scale import Generator, template  # noqa: E402
from bench.throwaway_postgres import throwaway_database  # noqa: E402
from collector.store import Store, StoredMeasurement, WritesComing, open_store  # noqa: E402

BATCH = 100
SIZES = (1, 3, 6)
UPLOADS = 60  # per round and group size: 6,000 measurements


def server_seconds() -> float:
    """CPU seconds used so far by the PostgreSQL server's processes on this machine."""
    total = 0
    for path in glob.glob("/proc/[0-9]*/stat"):
        try:
            raw = Path(path).read_text()
        except OSError:
            continue
        if raw[raw.index("(") + 1:raw.rindex(")")] == "postgres":
            fields = raw.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


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
                  wal: Callable[[], int] | None, server: bool) -> tuple[float, float]:
    """(this process's CPU, the server's CPU or WAL bytes) per measurement for ``UPLOADS``
    uploads given to ``store`` ``size`` at a time."""
    groups = [[uploads.next() for _ in range(size)] for _ in range(UPLOADS // size)]
    count = sum(len(u) for g in groups for u in g)
    cpu, other = time.process_time(), (server_seconds() if server else wal() if wal else 0)
    for group in groups:
        await asyncio.gather(*(store.add_measurements(u) for u in group))
    spent = time.process_time() - cpu
    after = server_seconds() if server else wal() if wal else 0
    return 1e6 * spent / count, (1e6 if server else 1) * (after - other) / count


async def run(database: str, stored: int, rounds: int, postgres: bool) -> None:
    generator = Generator(await template())
    uploads = Uploads(generator)
    # PostgreSQL before groups: the store without the ingest's count writes each upload
    # alone. With it (and no wait: every upload here is queued at once) a group is one.
    alone = await open_store(database)
    grouped = await open_store(database, coming=WritesComing()) if postgres else alone
    try:
        while generator.made < stored:
            await alone.add_measurements(uploads.next())
        results: dict[int, list[tuple[float, float]]] = {size: [] for size in SIZES}
        for _ in range(rounds):
            for size in SIZES:
                store = alone if size == 1 else grouped
                wal = None if postgres else written_bytes
                results[size].append(await measure(store, uploads, size, wal, postgres))
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
