"""Archiving to an S3-compatible bucket, on SQLite and PostgreSQL.

The bucket is served by moto's S3 server (``tests.helpers.s3_server``), an emulation of the S3
API in a process of its own, reached over loopback HTTP with signed requests exactly as a
MinIO or cloud bucket would be. The move is the local one with PUT and GET: nothing is emptied
unless the object read back holds every body, and bodies read back byte-identical after a
reopen, through ranged GETs and a bounded cache of decoded members.
"""

from __future__ import annotations

import gzip
import secrets
from collections.abc import Iterator

import pytest

from collector.store import Filters, Store
from collector.store.archive import ArchiveError, ArchiveUnreadable, archive
from collector.store.archive_targets import S3Target
from tests.collector.factory import stored
from tests.helpers.archive import CUT, archive_store, snapshot, three_days
from tests.helpers.s3_server import S3Server, s3_server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        yield server


@pytest.fixture
def bucket(s3: S3Server) -> str:
    name = f"kuzot-{secrets.token_hex(4)}"
    s3.create_bucket(name)
    return name


def _target(store: Store) -> S3Target:
    assert isinstance(store.archive_target, S3Target)
    return store.archive_target


async def test_archive_to_a_bucket_then_reopen_reads_every_body_back(
        database: str, s3: S3Server, bucket: str) -> None:
    settings = s3.settings(f"s3://{bucket}/kg-kz/archive")
    rows = three_days()
    async with archive_store(database, s3=settings, rows=rows) as store:
        before = await snapshot(store)
        report = await archive(store, _target(store), CUT)
        assert (report.bodies, report.emptied) == (12, 12)
        assert await snapshot(store) == before
        assert await store.archive_candidates(CUT, None, 100) == []

    # OONI's layout under the prefix; any gzip reader reads an object as JSON lines.
    client = s3.client()
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == sorted(f"kg-kz/archive/{name}" for name in report.files)
    assert "kg-kz/archive/web_connectivity/2024-05-01/KZ.jsonl.gz" in keys
    data = client.get_object(Bucket=bucket,
                             Key="kg-kz/archive/web_connectivity/2024-05-01/KZ.jsonl.gz")
    lines = gzip.decompress(data["Body"].read()).decode("utf-8").split("\n")[:-1]
    assert lines == [r.body for r in rows if r.start_time.startswith("2024-05-01")
                     and r.probe_cc == "KZ" and r.test_name == "web_connectivity"]

    async with archive_store(database, s3=settings) as reopened:
        assert await reopened.measurement_bodies([r.uid for r in rows]) == \
            {r.uid: r.body for r in rows}
        assert await snapshot(reopened) == before
        feed = await reopened.measurement_feed(0, 1000)
        assert sorted(f.body for f in feed) == sorted(r.body for r in rows)


async def test_a_failed_upload_empties_nothing(database: str, s3: S3Server) -> None:
    rows = three_days()
    async with archive_store(database, s3=s3.settings("s3://no-such-bucket/x"),
                             rows=rows) as store:
        with pytest.raises(ArchiveError, match="upload of .* failed"):
            await archive(store, _target(store), CUT)
        assert len(await store.archive_candidates(CUT, None, 100)) == 12
        assert await store.measurement_bodies([r.uid for r in rows]) == \
            {r.uid: r.body for r in rows}


async def test_an_object_that_reads_back_different_empties_nothing(
        database: str, s3: S3Server, bucket: str) -> None:
    rows = three_days()
    client = s3.client()
    async with archive_store(database, s3=s3.settings(f"s3://{bucket}"), rows=rows) as store:
        def replace(at: str, name: str) -> None:
            # Another writer (or a faulty gateway) leaves other bytes under the name.
            if at == "written":
                body = gzip.compress(b'{"measurement_uid":"someone else"}\n')
                client.put_object(Bucket=bucket, Key=name, Body=body)

        with pytest.raises(ArchiveError, match="does not hold what was written"):
            await archive(store, _target(store), CUT, checkpoint=replace)
        assert len(await store.archive_candidates(CUT, None, 100)) == 12
        assert await store.measurement_bodies([r.uid for r in rows]) == \
            {r.uid: r.body for r in rows}
        # The next run writes new objects next to the bad one and moves everything.
        report = await archive(store, _target(store), CUT)
        assert report.emptied == 12 and any(".2.jsonl.gz" in f for f in report.files)
        assert await store.measurement_bodies([r.uid for r in rows]) == \
            {r.uid: r.body for r in rows}


async def test_reads_come_from_a_bounded_cache_then_the_bucket(
        database: str, s3: S3Server, bucket: str) -> None:
    rows = [stored(start_time=f"2024-05-01 10:{i:02d}:00", uid=f"u{i:02d}",
                   probe_cc=("KG", "KZ")[i % 2],
                   body=f'{{"measurement_uid":"u{i:02d}","pad":"{"x" * 3000}"}}')
            for i in range(40)]
    # Room for one day-and-country member (20 bodies of ~3 KB), not two.
    settings = s3.settings(f"s3://{bucket}", cache_bytes=80_000)
    async with archive_store(database, s3=settings, rows=rows) as store:
        await archive(store, _target(store), CUT)
        kg = [r.uid for r in rows if r.probe_cc == "KG"]
        kz = [r.uid for r in rows if r.probe_cc == "KZ"]
        assert len(await store.measurement_bodies(kz)) == 20
        assert len(await store.measurement_bodies(kg)) == 20  # evicts KZ's member
        assert 0 < _target(store).cache.size <= 80_000
        for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]:
            s3.client().delete_object(Bucket=bucket, Key=o["Key"])
        # KG's member is still in memory; KZ's must be fetched and is gone.
        assert await store.measurement_bodies(kg) == {r.uid: r.body for r in rows
                                                      if r.probe_cc == "KG"}
        with pytest.raises(ArchiveUnreadable):
            await store.measurement_bodies(kz)
        # Summary rows answer whatever the archive's state.
        assert len(await store.measurements(Filters(), limit=100)) == 40
