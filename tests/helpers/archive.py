"""What the archive tests start from: three days of measurements, a cut-off that archives the
first two, a snapshot of what the summary rows answer (which archiving must leave as it was),
and a store opened with its archive target and closed at the end of the test."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from collector.store import Filters, Store, StoredMeasurement, open_store
from collector.store.archive_targets import S3Settings
from tests.collector.factory import stored

CUT = "2024-05-03 00:00:00"


def three_days() -> list[StoredMeasurement]:
    """Six measurements a day on 1-3 May 2024, of two countries and two tests, with bodies
    whose text a careless archive would change (Cyrillic, U+2028, quotes, backslashes)."""
    rows = []
    for day in ("01", "02", "03"):
        for i in range(6):
            cc = ("KG", "KZ")[i % 2]
            test = ("web_connectivity", "tcp_connect")[i % 3 == 0]
            uid = f"2024-05-{day}-{i}"
            body = json.dumps({"measurement_uid": uid, "probe_cc": cc, "n": i,
                               "text": "Бишкек \u2028 \"q\" \\n"}, ensure_ascii=False,
                              separators=(",", ":"))
            rows.append(stored(start_time=f"2024-05-{day} 1{i}:00:00", uid=uid, probe_cc=cc,
                               test_name=test, body=body))
    return rows


async def snapshot(store: Store) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """The summary rows, the daily rollups and the count: all that archiving must not change."""
    listed = await store.measurements(Filters(), limit=1000)
    aggregated = await store.aggregate(Filters(), ("day", "cc", "test_name"), 1000)
    return listed, aggregated, await store.count_measurements()


@asynccontextmanager
async def archive_store(database: str, root: Path | None = None, *,
                        s3: S3Settings | None = None,
                        rows: list[StoredMeasurement] | None = None) -> AsyncIterator[Store]:
    """The store of ``database`` archiving to the directory ``root`` or the bucket ``s3``,
    holding ``rows`` (added when given), closed on the way out."""
    store = await open_store(database, archive_dir=None if root is None else str(root),
                             archive_s3=s3)
    try:
        if rows is not None:
            await store.add_measurements(rows)
        yield store
    finally:
        await store.close()
