"""The collector link: how each kind of refusal is classified and handled, on real servers
(the real collector where it can play the part, small aiohttp servers for the rest)."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import random
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from collector.config import CollectorConfig, Limits
from probe.daemon import scheduler, upload
from probe.daemon.clock import SystemClock
from probe.daemon.uploader import Uploader, UploadError
from probe.local.journal import Journal
from probe.local.localdb import LocalDB
from probe.local.spool import Entry, Spool
from tests.helpers.collector import SwitchableCollector, issue_token
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import loopback_config, make_daemon


def measurement(index: int, cc: str = "KG", pad: int = 0) -> dict[str, Any]:
    return {
        "measurement_uid": f"20260101000000.{index:06d}_KG_connectivity_{index:016x}",
        "measurement_start_time": "2026-01-01 00:00:00", "test_start_time":
        "2026-01-01 00:00:00", "test_name": "connectivity", "input": None, "probe_cc": cc,
        "probe_asn": "AS8449", "probe_ip": "127.0.0.1", "software_name": "kuzot",
        "test_keys": {"rungs": {}, "pad": "x" * pad,
                      "analysis": {"online": True, "summary": "online"}},
    }


def answering(status: int, headers: dict[str, str] | None = None,
              seen: list[web.Request] | None = None, bodies: list[bytes] | None = None
              ) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        if bodies is not None:
            bodies.append(await request.read())
        if seen is not None:
            seen.append(request)
        if status == 200:
            batch = json.loads(bodies[-1] if bodies else b"{}").get("measurements", [])
            return web.json_response({"stored": [m["measurement_uid"] for m in batch]})
        return web.json_response({"error": "no"}, status=status, headers=headers)

    app = web.Application()
    app.router.add_post("/api/v1/{tail:.*}", handler)
    return app


@pytest.mark.parametrize(("status", "headers", "kind", "retry_after"), [
    (429, {"Retry-After": "120"}, "throttled", 120.0),
    (503, {}, "throttled", None),
    (500, {}, "server", None),
    (401, {}, "auth", None),
    (403, {}, "auth", None),
    (400, {}, "rejected", None),
    (413, {}, "rejected", None),
])
async def test_refusals_are_classified(status: int, headers: dict[str, str], kind: str,
                                       retry_after: float | None) -> None:
    from tests.helpers.servers import serve_app

    async with serve_app(answering(status, headers)) as port:
        uploader = Uploader(f"http://127.0.0.1:{port}", "t", timeout=2)
        with pytest.raises(UploadError) as caught:
            await uploader.upload_bodies([json.dumps(measurement(1))])
    assert caught.value.kind == kind and caught.value.status == status
    assert caught.value.retry_after == retry_after
    assert caught.value.permanent is (kind == "rejected")


async def test_a_silent_collector_is_a_network_failure_after_the_timeout() -> None:
    # A collector behind a blackholing censor: the connection opens, nothing ever answers.
    writers: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.read()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        uploader = Uploader(f"http://127.0.0.1:{port}", "t", timeout=0.5)
        with pytest.raises(UploadError) as caught:
            await uploader.heartbeat({"sent_at": "x"})
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
    assert caught.value.kind == "network"
    assert caught.value.args[0] == "generic_timeout_error"


async def test_batches_go_out_gzip_encoded_and_byte_identical() -> None:
    from tests.helpers.servers import serve_app

    seen: list[web.Request] = []
    bodies: list[bytes] = []
    spooled = [json.dumps(measurement(i), separators=(",", ":")) for i in range(3)]
    async with serve_app(answering(200, seen=seen, bodies=bodies)) as port:
        uploader = Uploader(f"http://127.0.0.1:{port}", "tok", timeout=2)
        await uploader.open()
        result = await uploader.upload_bodies(spooled)
        await uploader.close()
    assert seen[0].headers["Content-Encoding"] == "gzip"
    assert seen[0].headers["Authorization"] == "Bearer tok"
    # aiohttp has already inflated the body; the JSON text is exactly what was spooled.
    assert bodies[0] == ('{"measurements":[' + ",".join(spooled) + "]}").encode()
    assert result.stored == [json.loads(s)["measurement_uid"] for s in spooled]
    assert uploader.traffic > len(gzip.compress(bodies[0]))


async def upload_through_daemon(tmp_path: Path, config: CollectorConfig,
                                measurements: list[dict[str, Any]]) -> tuple[Any, list[str]]:
    collector = SwitchableCollector(config, free_port())
    token = await issue_token(config, "p-upload")
    await collector.start()
    try:
        probe_config = loopback_config(tmp_path, collector.base, token, [], 9)
        daemon, db, spool = await make_daemon(probe_config, tmp_path)
        await daemon.start()
        for item in measurements:
            await daemon.record(item)
        daemon.reachable = True
        await daemon._upload()
        await daemon.shutdown()
        counters = await spool.counters()
        await db.close()
    finally:
        await collector.stop()
    with sqlite3.connect(config.database) as store:
        stored = sorted(row[0] for row in store.execute("SELECT uid FROM measurements"))
    return counters, stored


async def test_the_measurement_the_collector_refuses_is_set_aside_and_the_rest_goes(
        tmp_path: Path, collector_config: CollectorConfig) -> None:
    batch = [measurement(0), measurement(1, cc="kg"), measurement(2),
             {**measurement(3), "test_name": "no_such_test"}]
    counters, stored = await upload_through_daemon(tmp_path, collector_config, batch)
    assert stored == sorted([batch[0]["measurement_uid"], batch[2]["measurement_uid"]])
    assert counters["quarantined"] == 2 and counters["uploaded"] == 2
    with sqlite3.connect(tmp_path / "spool.sqlite") as spool:
        reasons = dict(spool.execute("SELECT uid, reason FROM quarantine").fetchall())
    assert set(reasons) == {batch[1]["measurement_uid"], batch[3]["measurement_uid"]}
    assert "probe_cc" in reasons[batch[1]["measurement_uid"]]
    assert "test_name" in reasons[batch[3]["measurement_uid"]]


async def test_a_body_too_large_for_the_collector_is_split_until_it_fits(
        tmp_path: Path, collector_config: CollectorConfig) -> None:
    size = len(json.dumps(measurement(0, pad=20_000)))
    limited = dataclasses.replace(collector_config, limits=dataclasses.replace(
        Limits(), max_body_bytes=int(size * 1.5)))
    batch = [measurement(i, pad=20_000) for i in range(4)]
    counters, stored = await upload_through_daemon(tmp_path, limited, batch)
    assert stored == sorted(m["measurement_uid"] for m in batch)
    assert counters["uploaded"] == 4 and counters["quarantined"] == 0


async def test_a_refused_measurement_whose_uid_the_collector_cannot_read_is_found_by_index(
        tmp_path: Path, collector_config: CollectorConfig) -> None:
    # The collector gives back at most 128 characters of a uid it refuses: a longer one is
    # found by the structured ``index`` field of its answer, not by the uid nor the error text.
    long_uid = {**measurement(1), "measurement_uid": "x" * 200}
    batch = [measurement(0), long_uid, measurement(2), {**measurement(3), "probe_cc": "kg"}]
    counters, stored = await upload_through_daemon(tmp_path, collector_config, batch)
    assert stored == sorted([batch[0]["measurement_uid"], batch[2]["measurement_uid"]])
    assert counters["quarantined"] == 2 and counters["uploaded"] == 2
    with sqlite3.connect(tmp_path / "spool.sqlite") as spool:
        reasons = dict(spool.execute("SELECT uid, reason FROM quarantine").fetchall())
    assert set(reasons) == {"x" * 200, batch[3]["measurement_uid"]}
    assert "measurement_uid" in reasons["x" * 200]
    assert "probe_cc" in reasons[batch[3]["measurement_uid"]]


async def test_the_collector_answer_names_each_refused_entry_field_by_field(
        collector_config: CollectorConfig) -> None:
    collector = SwitchableCollector(collector_config, free_port())
    token = await issue_token(collector_config, "p-upload")
    await collector.start()
    bodies = [measurement(0), {**measurement(1), "measurement_uid": "y" * 300},
              {**measurement(2), "probe_cc": "kg"}]
    entries = [Entry(str(m["measurement_uid"]), "web_connectivity", None, "", json.dumps(m))
               for m in bodies]
    try:
        uploader = Uploader(collector.base, token, timeout=5)
        with pytest.raises(UploadError) as caught:
            await uploader.upload_bodies([entry.body for entry in entries])
        await uploader.close()
    finally:
        await collector.stop()
    assert caught.value.kind == "rejected"
    named = upload.refused(entries, caught.value.rejected)
    assert [item.entry.uid for item in named] == ["y" * 300, entries[2].uid]
    assert "probe_cc" in named[1].reason
    # An answer that names nothing (a body too large, an older collector) names no entry.
    assert upload.refused(entries, []) == []
    assert upload.refused(entries, [{"index": 9, "uid": None, "reason": "x"}]) == []


async def test_the_upload_service_drains_a_spool_alone_and_backs_off_when_unanswered(
        tmp_path: Path, collector_config: CollectorConfig) -> None:
    # No daemon: the service, a spool, a journal and the real collector.
    collector = SwitchableCollector(collector_config, free_port())
    token = await issue_token(collector_config, "p-upload")
    await collector.start()
    config = loopback_config(tmp_path, collector.base, token, [], 9)
    db = await LocalDB.open(config.spool_path)
    spool = Spool(db, 10_000_000)
    batch = [measurement(i) for i in range(5)] + [{**measurement(5), "probe_cc": "kg"}]
    await spool.put(Entry(str(m["measurement_uid"]), str(m["test_name"]), None,
                          str(m["measurement_start_time"]), json.dumps(m)) for m in batch)
    planned: list[float] = []
    refreshed: list[int] = []

    async def no_clock(_sent: datetime) -> dict[str, str | None]:
        return {}

    async def refresh() -> None:
        refreshed.append(1)

    uploads = upload.Uploads(config, spool, Journal(db), Uploader(collector.base, token),
                             clock=SystemClock(), rng=random.Random(1), scrub=str,
                             plan=planned.append, check_clock=no_clock, refresh=refresh,
                             queued=lambda: 0)
    try:
        await uploads.drain(lambda: False)
        assert planned == [config.schedule.upload_interval]  # empty: the usual next time
        assert uploads.failures == 0 and uploads.last is not None
        counters = await spool.counters()
        assert counters["uploaded"] == 5 and counters["quarantined"] == 1
        await collector.stop()
        await spool.put([Entry("late", "web_connectivity", None, "", json.dumps(measurement(9)))])
        await uploads.drain(lambda: False)  # nobody answers: back off, keep it
        assert uploads.failures == 1 and len(planned) == 2
        # The service's rng was used for nothing else: the first backoff of that seed.
        assert planned[1] == scheduler.backoff(1, config.schedule.retry_min,
                                               config.schedule.retry_max, random.Random(1), None)
        assert (await spool.depth()).measurements == 1
        assert refreshed
    finally:
        await uploads.uploader.close()
        await db.close()
        await collector.stop()
