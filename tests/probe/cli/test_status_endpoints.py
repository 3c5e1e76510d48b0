"""``probe status`` names the collector's endpoints, configured then announced (with the
announcement's serial and expiry), and the way the collector was reached last; a restarted
daemon resumes from that way and its first heartbeat says so."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.config import CollectorConfig
from probe.cli import status
from probe.daemon.announce import Announcement
from probe.daemon.endpoints import Endpoint, EndpointList, FailoverUploader, configured
from probe.local import journal
from probe.local.journal import Journal
from probe.local.localdb import LocalDB
from tests.helpers.collector import SwitchableCollector, issue_token
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import loopback_config, make_daemon

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
TWO = [{"name": "first", "url": "https://kuzot.example.org"},
       {"name": "second", "url": "https://kuzot.example.net", "front": "cdn.example.com"}]


async def test_status_lists_announced_endpoints_beside_the_configured_and_the_last_path(
        tmp_path: Path) -> None:
    config = loopback_config(tmp_path, "https://kuzot.example.org", "secret-token", [], 9,
                             collector={"endpoints": TWO})
    db = await LocalDB.open(config.spool_path)
    moved = Announcement(7, datetime(2026, 2, 1, tzinfo=UTC),
                         (Endpoint("moved", "https://kuzot-2.example.org"),
                          Endpoint("second", "https://elsewhere.example.org")))
    await Journal(db).set(**{
        journal.ANNOUNCED: moved.to_json(),
        journal.COLLECTOR_PATH: json.dumps({"endpoint": "moved", "path": "socks5",
                                            "fallback": True, "at": "2026-01-05T11:55:00Z"})})
    await db.close()

    report = status.gather(config, NOW)
    # A name already configured keeps its configured entry, as in the daemon's list.
    assert report["collector"] == {
        "endpoints": [{"name": "first", "source": "configured"},
                      {"name": "second", "source": "configured"},
                      {"name": "moved", "source": "announced"}],
        "announcement": {"serial": 7, "expires": "2026-02-01T00:00:00Z"},
        "last_path": {"endpoint": "moved", "path": "socks5", "fallback": True,
                      "at": "2026-01-05T11:55:00Z"}}
    lines = status.render(report, NOW).splitlines()
    assert ("collector      endpoints in order: first (configured), second (configured), "
            "moved (announced)") in lines
    assert any("announcement serial 7, valid until 2026-02-01T00:00:00Z" in line
               for line in lines)
    assert any("last reached through moved (socks5, a fallback) 2026-01-05T11:55:00Z UTC "
               "(5 min ago)" in line for line in lines)
    expired = status.render(report, datetime(2026, 3, 1, tzinfo=UTC))
    assert "announcement serial 7, expired at 2026-02-01" in expired
    assert "kuzot-2.example.org" not in status.render(report, NOW)  # names, never URLs


async def test_a_fresh_probe_has_only_its_configured_endpoint_and_no_path(
        tmp_path: Path) -> None:
    config = loopback_config(tmp_path, "http://127.0.0.1:9", None, [], 9)
    await (await LocalDB.open(config.spool_path)).close()
    report = status.gather(config, NOW)
    assert report["collector"] == {"endpoints": [{"name": "primary", "source": "configured"}],
                                   "announcement": None, "last_path": None}
    assert any(line.endswith("not reached yet") for line in status.render(
        report, NOW).splitlines())


async def test_the_path_that_worked_is_shown_and_resumed_after_a_restart(
        tmp_path: Path, collector_config: CollectorConfig) -> None:
    """The first endpoint refuses; the daemon reaches the real collector at the second. The
    status says so, and a restarted daemon goes to the second first: its first heartbeat
    names it as a fallback (the collector's monitor_reach reads that)."""
    token = await issue_token(collector_config, "p-status")
    collector = SwitchableCollector(collector_config, free_port())
    blocked = f"http://127.0.0.1:{free_port()}"
    config = loopback_config(tmp_path, blocked, token, [], 9, collector={"endpoints": [
        {"name": "first", "url": blocked}, {"name": "second", "url": collector.base}]})

    def uploader() -> FailoverUploader:
        link = config.collector
        return FailoverUploader(EndpointList(configured(link.url, link.endpoints),
                                             link.retry_first_after), token, timeout=2.0)

    await collector.start()
    try:
        for _run in range(2):
            daemon, db, _ = await make_daemon(config, tmp_path, uploader=uploader())
            await daemon.start()
            await daemon._heartbeat()
            await daemon.shutdown()
            await db.close()
    finally:
        await collector.stop()
    now = datetime.now(UTC)
    report = status.gather(config, now)
    last = report["collector"]["last_path"]
    assert (last["endpoint"], last["path"], last["fallback"]) == ("second", "direct", True)
    assert abs(datetime.strptime(last["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
               - now) < timedelta(minutes=1)
    assert any("last reached through second (direct, a fallback)" in line
               for line in status.render(report, now).splitlines())
    with sqlite3.connect(collector_config.database) as store:
        beats = [json.loads(row[0]) for row in store.execute(
            "SELECT body FROM heartbeats ORDER BY rowid")]
    # The first run's heartbeat knew no way yet; the restarted one's names the way it
    # resumed from.
    assert [b.get("collector_endpoint") for b in beats] == [None, "second"]
    assert beats[1]["collector_fallback"] is True


def test_resume_ignores_what_it_cannot_use() -> None:
    endpoints = EndpointList([Endpoint("first", "http://a.example"),
                              Endpoint("second", "http://b.example")], retry_first_after=3600)
    uploader = FailoverUploader(endpoints, None)
    fresh = {"endpoint": "second", "path": "direct", "fallback": True,
             "at": "2026-01-05T11:30:00Z"}
    for saved in (None, "not json", json.dumps({**fresh, "endpoint": "gone"}),
                  json.dumps({**fresh, "at": "2026-01-05T10:00:00Z"}),  # older than an hour
                  json.dumps({**fresh, "at": "yesterday"}), json.dumps([1, 2])):
        assert not uploader.resume(saved, NOW), saved
        assert endpoints.order()[0].name == "first"
    assert uploader.resume(json.dumps(fresh), NOW)
    assert endpoints.order()[0].name == "second" and uploader.fallback_used is True
    assert dataclasses.asdict(endpoints.order()[1]) == {"name": "first",
                                                        "url": "http://a.example",
                                                        "front": None}
