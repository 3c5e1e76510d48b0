"""The scale bench's PostgreSQL clone: the copied store agrees with a recount of its rows, and
the recount notices a rollup or a target state that does not."""

from __future__ import annotations

import pytest

from bench.collector_scale import START, Generator, template
from bench.scale_clone import check_postgres, clone_postgres
from collector.store import open_store
from tests.helpers.postgres import cluster_for_test

pytestmark = pytest.mark.postgres


async def test_clone_agrees_with_a_recount_and_the_recount_catches_a_wrong_count() -> None:
    base = await template()
    with cluster_for_test() as cluster:
        cluster.execute("CREATE DATABASE clone")
        store = await open_store(cluster.dsn("clone"))
        try:
            # One hour of the fleet, copied once whole and once in part (1,500 rows).
            await store.add_measurements(Generator(base).rows(3000))
            assert await clone_postgres(store, 3000, 7500, 3000, START) == 7500
            counts = await check_postgres(cluster.dsn("clone"))
            assert counts["measurements"] == counts["measurement_bodies"] == 7500
            assert await store.count_measurements() == 7500
            # 7 networks' probes x 60 targets; the copies are two hours later.
            assert counts["target_state"] == 7 * 60
            bodies = await store.measurement_bodies(["s00000001499", "s00000007499"])
            assert bodies["s00000007499"] == bodies["s00000001499"]  # byte for byte
            rows = await store._fetch(  # type: ignore[attr-defined]
                "SELECT count(*) AS n, min(start_time) AS low FROM measurement_bodies "
                "WHERE uid >= 's00000006000'")
            assert rows[0]["n"] == 1500 and rows[0]["low"].hour == 2

            async def one_more(conn: object) -> None:
                await conn.execute(  # type: ignore[attr-defined]
                    "UPDATE rollups_hourly SET count = count + 1 WHERE (period, input) = "
                    "(SELECT period, input FROM rollups_hourly ORDER BY 1, 2 LIMIT 1)")

            await store._write(one_more)  # type: ignore[attr-defined]
            with pytest.raises(RuntimeError, match="rollups_hourly differ"):
                await check_postgres(cluster.dsn("clone"))

            async def back_and_older(conn: object) -> None:
                await conn.execute(  # type: ignore[attr-defined]
                    "UPDATE rollups_hourly SET count = count - 1 WHERE (period, input) = "
                    "(SELECT period, input FROM rollups_hourly ORDER BY 1, 2 LIMIT 1)")
                await conn.execute(  # type: ignore[attr-defined]
                    "UPDATE target_state t SET uid = m.uid, start_time = m.start_time "
                    "FROM measurements m WHERE m.uid = 's00000000000' "
                    "AND t.target = m.input AND t.probe_asn = m.probe_asn "
                    "AND t.probe_cc = m.probe_cc")

            await store._write(back_and_older)  # type: ignore[attr-defined]
            with pytest.raises(RuntimeError, match="not the latest row"):
                await check_postgres(cluster.dsn("clone"))
        finally:
            await store.close()
