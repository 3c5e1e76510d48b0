"""The spool: order, acknowledgement, the size cap, quarantine, scrubbing on disk, and
surviving a crash (a real process killed with SIGKILL in the middle of writing)."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import sys
import textwrap
from pathlib import Path

from probe.local.localdb import LocalDB
from probe.local.privacy import AddressBook
from probe.local.spool import Entry, Spool
from tests.helpers.paths import REPO


def entry(index: int, pad: int = 100, text: str = "") -> Entry:
    body = json.dumps({"measurement_uid": f"uid-{index:05d}", "pad": "x" * pad, "text": text})
    return Entry(uid=f"uid-{index:05d}", test_name="web_connectivity",
                 input=f"https://site{index}.example/",
                 start_time=f"2026-01-01 00:{index // 60 % 60:02d}:{index % 60:02d}", body=body)


async def test_batches_come_oldest_first_and_ack_deletes(tmp_path: Path) -> None:
    db = await LocalDB.open(str(tmp_path / "spool.sqlite"))
    spool = Spool(db, 10**6)
    await spool.put(entry(i) for i in range(10))
    batch = await spool.batch(limit=4, max_bytes=10**6)
    assert [e.uid for e in batch] == [f"uid-{i:05d}" for i in range(4)]
    assert await spool.ack([e.uid for e in batch] + ["uid-unknown"]) == 4
    rest = await spool.batch(limit=100, max_bytes=10**6)
    assert [e.uid for e in rest] == [f"uid-{i:05d}" for i in range(4, 10)]
    depth = await spool.depth()
    assert depth.measurements == 6 and depth.oldest == entry(4).start_time
    assert depth.bytes == sum(len(entry(i).body) for i in range(4, 10))
    counters = await spool.counters()
    assert counters["enqueued"] == 10 and counters["uploaded"] == 4
    await db.close()


async def test_batch_respects_the_byte_limit_but_never_returns_nothing(tmp_path: Path) -> None:
    db = await LocalDB.open(str(tmp_path / "spool.sqlite"))
    spool = Spool(db, 10**6)
    await spool.put([entry(0, pad=5000), entry(1, pad=10)])
    assert [e.uid for e in await spool.batch(limit=10, max_bytes=100)] == ["uid-00000"]
    await db.close()


async def test_a_uid_is_spooled_once(tmp_path: Path) -> None:
    db = await LocalDB.open(str(tmp_path / "spool.sqlite"))
    spool = Spool(db, 10**6)
    await spool.put([entry(1)])
    await spool.put([entry(1)])
    assert (await spool.depth()).measurements == 1
    assert (await spool.counters())["enqueued"] == 1
    await db.close()


async def test_everything_survives_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "spool.sqlite")
    db = await LocalDB.open(path)
    await Spool(db, 10**6).put(entry(i) for i in range(5))
    await db.close()
    db = await LocalDB.open(path)
    spool = Spool(db, 10**6)
    assert [e.body for e in await spool.batch(10, 10**6)] == [entry(i).body for i in range(5)]
    assert (await spool.depth()).measurements == 5
    await db.close()


async def test_cap_evicts_oldest_first_and_counts_it(tmp_path: Path) -> None:
    db = await LocalDB.open(str(tmp_path / "spool.sqlite"))
    size = len(entry(0).body)
    spool = Spool(db, max_bytes=size * 5)
    evicted = 0
    for i in range(12):
        evicted += await spool.put([entry(i)])
    assert evicted == 7
    remaining = [e.uid for e in await spool.batch(100, 10**6)]
    assert remaining == [f"uid-{i:05d}" for i in range(7, 12)]
    counters = await spool.counters()
    assert counters["evicted"] == 7 and counters["evicted_bytes"] == 7 * size
    depth = await spool.depth()
    assert depth.bytes <= size * 5 and depth.measurements == 5
    await db.close()


async def test_quarantine_sets_a_refused_measurement_aside(tmp_path: Path) -> None:
    db = await LocalDB.open(str(tmp_path / "spool.sqlite"))
    spool = Spool(db, 10**6)
    await spool.put([entry(1), entry(2)])
    await spool.quarantine("uid-00001", "probe_cc: two upper-case letters",
                           "2026-01-01 00:00:00")
    assert [e.uid for e in await spool.batch(10, 10**6)] == ["uid-00002"]
    assert (await spool.counters())["quarantined"] == 1
    rows = await db.run(lambda c: c.execute("SELECT uid, reason FROM quarantine").fetchall())
    assert rows == [("uid-00001", "probe_cc: two upper-case letters")]
    await db.close()


def _file_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))


async def test_learning_an_address_later_scrubs_it_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    db = await LocalDB.open(str(path))
    spool = Spool(db, 10**6)
    await spool.put([entry(1, text="your address is 203.0.113.7"), entry(2, text="nothing")])
    await db.close()
    assert b"203.0.113.7" in _file_bytes(path)  # the test would prove nothing otherwise

    db = await LocalDB.open(str(path))
    spool = Spool(db, 10**6)
    book = AddressBook(b"k" * 32)
    book.learn("203.0.113.7")
    assert await spool.rewrite(book.scrub) == 1
    bodies = [json.loads(e.body)["text"] for e in await spool.batch(10, 10**6)]
    assert bodies == ["your address is [scrubbed]", "nothing"]
    await db.close()
    assert b"203.0.113.7" not in _file_bytes(path)


async def test_rewriting_named_measurements_leaves_the_others_and_counts_the_bytes(
        tmp_path: Path) -> None:
    db = await LocalDB.open(str(tmp_path / "spool.sqlite"))
    spool = Spool(db, 10**6)
    await spool.put([entry(i) for i in range(1, 6)])
    before = await spool.depth()
    changed = await spool.rewrite_some(["uid-00002", "uid-00004", "uid-gone"],
                                       lambda body: body.replace("}", ',"more":"x"}'), chunk=1)
    assert changed == 2
    bodies = {e.uid: json.loads(e.body) for e in await spool.batch(10, 10**6)}
    assert [uid for uid, body in sorted(bodies.items()) if "more" in body] == [
        "uid-00002", "uid-00004"]
    after = await spool.depth()
    assert after.measurements == before.measurements
    assert after.bytes == before.bytes + 2 * len(',"more":"x"')
    await db.close()


WRITER = textwrap.dedent("""
    import asyncio, json, sys
    from probe.local.localdb import LocalDB
    from probe.local.spool import Entry, Spool

    async def main() -> None:
        db = await LocalDB.open(sys.argv[1])
        spool = Spool(db, 10**9)
        index = 0
        while True:
            uid = f"crash-{index:06d}"
            body = json.dumps({"measurement_uid": uid, "pad": "x" * 2000})
            await spool.put([Entry(uid, "connectivity", None, "2026-01-01 00:00:00", body)])
            print(uid, flush=True)  # only after the commit returned
            index += 1

    asyncio.run(main())
""")


async def test_a_killed_probe_keeps_every_committed_measurement(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", WRITER, str(path), cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    committed: list[str] = []
    try:
        while len(committed) < 40:
            line = await asyncio.wait_for(process.stdout.readline(), 30)
            assert line, (await process.stderr.read()).decode()  # type: ignore[union-attr]
            committed.append(line.decode().strip())
    finally:
        # SIGKILL: no handler runs, no close, no checkpoint; most likely mid-transaction.
        process.send_signal(signal.SIGKILL)
        await process.wait()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        stored = {row[0] for row in db.execute("SELECT uid FROM spool")}
    assert set(committed) <= stored
    db2 = await LocalDB.open(str(path))
    spool = Spool(db2, 10**9)
    depth = await spool.depth()
    assert depth.measurements == len(stored)
    counters = await spool.counters()
    assert counters["enqueued"] == len(stored)
    await db2.close()


async def test_depth_is_counted_so_two_writers_cannot_drive_it_negative(
        tmp_path: Path) -> None:
    """Two processes on one spool (before the daemon's lock) each kept a running total: one
    acknowledged what the other had spooled and its depth went below zero. Depth is now the
    rows in the file, whoever wrote or deleted them."""
    path = str(tmp_path / "spool.sqlite")
    db_a, db_b = await LocalDB.open(path), await LocalDB.open(path)
    spool_a, spool_b = Spool(db_a, 10**9), Spool(db_b, 10**9)
    try:
        await spool_b.put([entry(0)])
        assert (await spool_b.depth()).measurements == 1
        await spool_a.put(entry(i) for i in range(1, 6))
        # B uploads everything, including the five measurements A spooled after B's last look.
        batch = await spool_b.batch(100, 10**9)
        assert await spool_b.ack(e.uid for e in batch) == 6
        for spool in (spool_a, spool_b):
            depth = await spool.depth()
            assert (depth.measurements, depth.bytes, depth.oldest) == (0, 0, None)
            counters = await spool.counters()
            assert counters["enqueued"] == 6 and counters["uploaded"] == 6
        await spool_a.put([entry(9)])
        assert (await spool_b.depth()).measurements == 1
        assert (await spool_b.depth()).bytes == len(entry(9).body.encode())
    finally:
        await db_a.close()
        await db_b.close()
