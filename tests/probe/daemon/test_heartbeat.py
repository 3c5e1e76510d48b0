"""The heartbeat's body (``probe.daemon.heartbeat``) on its own, against the real collector:
it is accepted as sent and stored with what it reports, without a daemon around it."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from probe.daemon import heartbeat
from probe.daemon.state import DaemonState
from probe.daemon.uploader import Uploader
from probe.local.spool import Depth
from tests.helpers.collector_app import running
from tests.helpers.probe_setup import loopback_config


def status(**changes: Any) -> DaemonState:
    usual = DaemonState(depth=Depth(7, 7000, "2026-12-01 10:00:00"), counters={"evicted": 2},
                        online=True, in_event_window=False, used_today=1234,
                        budget=50_000_000, controls={})
    return dataclasses.replace(usual, **changes)


async def test_the_collector_accepts_the_body_and_stores_what_it_reports(
        tmp_path: Path) -> None:
    database = f"{tmp_path}/k.sqlite"
    async with running(database) as c:
        token = (await c.token("kg-hb"))["Authorization"].removeprefix("Bearer ")
        url = str(c.client.make_url("")).rstrip("/")
        config = loopback_config(tmp_path, url, token, [], 9)
        uploader = Uploader(url, token, timeout=5)
        sent = heartbeat.body(config, uploader, status(
            controls={"endpoint": "https://control.example/", "blocked": True}),
            datetime(2026, 12, 1, 10, 5, tzinfo=UTC))
        answer = await uploader.heartbeat(sent)
        await uploader.close()
    # With a token the collector knows the probe: the body does not name it.
    assert "probe_id" not in sent
    assert sent["queue_depth"] == 7 and sent["evicted_total"] == 2
    assert sent["sent_at"] == "2026-12-01 10:05:00"
    assert sent["control_endpoint"] == "https://control.example/"
    assert sent["controls_blocked"] is True
    assert isinstance(answer, dict) and uploader.server_date is not None
    with sqlite3.connect(database) as store:
        rows = store.execute("SELECT probe_id, queue_depth, body FROM heartbeats").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("kg-hb", 7)]
    assert json.loads(rows[0][2])["data_used_today"] == 1234


def test_without_a_token_the_body_names_the_probe_and_without_controls_omits_them(
        tmp_path: Path) -> None:
    config = loopback_config(tmp_path, "http://127.0.0.1:9", None, [], 9)
    sent = heartbeat.body(config, Uploader("http://127.0.0.1:9", None), status(),
                          datetime(2026, 12, 1, tzinfo=UTC))
    assert sent["probe_id"] == config.identity.probe_id
    assert "control_endpoint" not in sent and "collector_endpoint" not in sent
