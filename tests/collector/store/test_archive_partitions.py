"""PostgreSQL drops a month of bodies only when every body in it is archived and reads back
identical from the archive; the month's summary rows and rollups stay, and a store of the
previous schema (bodies inside the summary rows) moves its bodies to the new table."""

from __future__ import annotations

import gzip
from pathlib import Path

import asyncpg
import pytest

from collector.store import Filters, StoredMeasurement, open_store
from collector.store.archive import archive
from collector.store.archive_targets import LocalTarget
from collector.store.body import pack
from collector.store.postgres import MIGRATIONS, PostgresStore, migrate
from tests.collector.factory import stored
from tests.helpers.archive import archive_store, snapshot

pytestmark = pytest.mark.postgres


def _months() -> list[StoredMeasurement]:
    return [stored(uid=f"{month}-{i}", start_time=f"2024-{month}-{10 + i} 12:00:00",
                   probe_cc=("KG", "KZ")[i % 2],
                   body=f'{{"measurement_uid":"{month}-{i}","n":{i},"t":"Ош"}}')
            for month in ("01", "02", "03") for i in range(4)]


async def _body_partitions(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        parts = await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'measurement_bodies'::regclass ORDER BY 1")
        return {p["relname"]: int(await conn.fetchval(f"SELECT count(*) FROM {p['relname']}"))
                for p in parts}
    finally:
        await conn.close()


async def test_months_all_archived_and_verified_are_dropped(postgres_dsn: str,
                                                            tmp_path: Path) -> None:
    root = tmp_path / "archive"
    rows = _months()
    async with archive_store(postgres_dsn, root, rows=rows) as store:
        before = await snapshot(store)
        # Up to the middle of March: January and February end before the cut, March not.
        report = await archive(store, LocalTarget(root), "2024-03-12 00:00:00")
        assert report.emptied == 10
        assert report.dropped == ("measurement_bodies_p202401", "measurement_bodies_p202402")
        assert await _body_partitions(postgres_dsn) == {"measurement_bodies_p202403": 4}
        assert await snapshot(store) == before  # summary rows and rollups all there
        daily = await store.aggregate(Filters(since="2024-01-01 00:00:00",
                                              until="2024-02-01 00:00:00"), ("day",), 100)
        assert sum(g["measurement_count"] for g in daily) == 4
    async with archive_store(postgres_dsn, root) as reopened:
        assert await reopened.measurement_bodies([r.uid for r in rows]) == \
            {r.uid: r.body for r in rows}


async def test_a_month_that_does_not_read_back_is_kept(postgres_dsn: str,
                                                       tmp_path: Path) -> None:
    root = tmp_path / "archive"
    rows = _months()[:4]  # January
    async with archive_store(postgres_dsn, root, rows=rows) as store:
        # Archived within the month: the partition must wait for the month's end.
        report = await archive(store, LocalTarget(root), "2024-01-20 00:00:00")
        assert (report.emptied, report.dropped) == (4, ())
        # Read once (the bodies are now in the read cache), then a file changed after it was
        # verified: the month's bodies stay in the database.
        assert len(await store.measurement_bodies([r.uid for r in rows])) == 4
        for path in root.rglob("*.jsonl.gz"):
            path.write_bytes(b"")
        assert await store.drop_archived_partitions("2024-03-01 00:00:00") == []
        assert await _body_partitions(postgres_dsn) == {"measurement_bodies_p202401": 4}


async def test_a_late_upload_keeps_its_month_until_archived_too(postgres_dsn: str,
                                                                tmp_path: Path) -> None:
    root = tmp_path / "archive"
    rows = _months()[:4]
    store = await open_store(postgres_dsn, archive_dir=str(root))
    other = await PostgresStore.open(postgres_dsn)  # another collector, January seen
    try:
        await store.add_measurements(rows)
        await archive(store, LocalTarget(root), "2024-01-20 00:00:00")
        late = stored(uid="late", start_time="2024-01-05 08:00:00", body='{"late":1}')
        assert await other.add_measurements([late]) == ["late"]
        assert await store.drop_archived_partitions("2024-03-01 00:00:00") == []
        report = await archive(store, LocalTarget(root), "2024-03-01 00:00:00")
        assert (report.emptied, report.dropped) == (1, ("measurement_bodies_p202401",))
        # The other collector still believes January's partition exists: a later upload
        # for January makes it again instead of failing.
        later = stored(uid="later", start_time="2024-01-06 08:00:00", body='{"later":1}')
        assert await other.add_measurements([later]) == ["later"]
        bodies = await store.measurement_bodies([r.uid for r in rows] + ["late", "later"])
        assert bodies == {**{r.uid: r.body for r in rows}, "late": '{"late":1}',
                          "later": '{"later":1}'}
    finally:
        await other.close()
        await store.close()


async def test_a_store_of_the_previous_schema_moves_its_bodies(postgres_dsn: str,
                                                               tmp_path: Path) -> None:
    conn = await asyncpg.connect(postgres_dsn)
    try:
        await migrate(conn, MIGRATIONS[:5])
        await conn.execute("CREATE TABLE measurements_p202401 PARTITION OF measurements "
                           "FOR VALUES FROM ('2024-01-01') TO ('2024-02-01')")
        for uid, body, body_z, ref in (
                ("text", '{"old":"text"}', None, None),
                ("packed", None, pack('{"old":"packed"}'), None),
                ("archived", None, None, "web_connectivity/2024-01-10/KG.jsonl.gz:0:0")):
            await conn.execute(
                "INSERT INTO measurement_uids (uid, start_time) VALUES ($1, '2024-01-10')", uid)
            await conn.execute(
                "INSERT INTO measurements (uid, probe_id, test_name, probe_cc, probe_asn, "
                "start_time, received_at, location_source, location_mismatch, body, body_z, "
                "archive) VALUES ($1, 'p1', 'web_connectivity', 'KG', 'AS1', '2024-01-10', "
                "'2024-01-10', 'declared', false, $2, $3, $4)", uid, body, body_z, ref)
    finally:
        await conn.close()
    root = tmp_path / "archive"
    LocalTarget(root).put("web_connectivity/2024-01-10/KG.jsonl.gz",
                          gzip.compress(b'{"old":"archived"}\n', mtime=0))
    async with archive_store(postgres_dsn, root) as store:
        assert await store.schema_version() == len(MIGRATIONS)
        assert await store.measurement_bodies(["text", "packed", "archived"]) == {
            "text": '{"old":"text"}', "packed": '{"old":"packed"}',
            "archived": '{"old":"archived"}'}
        assert await _body_partitions(postgres_dsn) == {"measurement_bodies_p202401": 2}
