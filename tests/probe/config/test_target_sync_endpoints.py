"""Target lists come through the same endpoints as uploads: the configured ones, then the
announced ones kept in the spool file, the one that worked last first.

Against the real collector on loopback; a refused port stands for the blocked first endpoint.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

from collector.config import TargetListsConfig
from probe.config import probe_config
from probe.config.target_sync import known_endpoints, refresh
from probe.daemon.announce import Announcement
from probe.daemon.endpoints import Endpoint, EndpointList, FailoverUploader, configured
from probe.local.journal import ANNOUNCED, COLLECTOR_PATH, Journal
from probe.local.localdb import LocalDB
from tests.helpers.collector_app import running
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import make_daemon
from tests.probe.config.test_target_sync import SHIPPED, base, probe_yaml


async def remembered(config: probe_config.ProbeConfig, **state: str) -> None:
    """Write the daemon's journal entries into the probe's spool file, as a daemon left them."""
    Path(config.spool_path).parent.mkdir(parents=True, exist_ok=True)
    db = await LocalDB.open(config.spool_path)
    try:
        await Journal(db).set(**state)
    finally:
        await db.close()


def last_path(name: str, at: datetime) -> str:
    return json.dumps({"endpoint": name, "path": "direct", "fallback": name != "first",
                       "at": at.strftime("%Y-%m-%dT%H:%M:%SZ")})


async def test_lists_come_from_an_announced_endpoint_when_the_configured_one_is_blocked(
        tmp_path: Path) -> None:
    lists = tmp_path / "served"
    shutil.copytree(SHIPPED, lists)
    async with running(f"{tmp_path}/k.sqlite",
                       target_lists=TargetListsConfig(directory=str(lists))) as c:
        token = (await c.token("kg-1"))["Authorization"].removeprefix("Bearer ")
        path = probe_yaml(tmp_path, f"http://127.0.0.1:{free_port()}")
        config = probe_config.load(path)
        # Before any announcement: only the blocked configured endpoint, no lists.
        assert "did not answer (primary: " in await refresh(config, token)
        moved = Announcement(3, datetime.now(UTC) + timedelta(days=1),
                             (Endpoint("moved", base(c)),))
        await remembered(config, **{ANNOUNCED: moved.to_json()})
        assert [e.name for e in known_endpoints(config).endpoints] == ["primary", "moved"]
        message = await refresh(config, token)
        assert message.startswith("target lists: fetched version ") and message.endswith(
            " from moved"), message
        assert "https://kloop.kg/" in {t.url for t in probe_config.load(path).targets}


async def test_the_fetch_shares_the_daemons_failover_memory(tmp_path: Path) -> None:
    lists = tmp_path / "served"
    shutil.copytree(SHIPPED, lists)
    async with running(f"{tmp_path}/k.sqlite",
                       target_lists=TargetListsConfig(directory=str(lists))) as c:
        token = (await c.token("kg-1"))["Authorization"].removeprefix("Bearer ")
        blocked = f"http://127.0.0.1:{free_port()}"
        config = probe_config.load(probe_yaml(tmp_path, blocked))
        endpoints = EndpointList([Endpoint("first", blocked), Endpoint("second", base(c))])
        assert [e.name for e in endpoints.order()] == ["first", "second"]
        message = await refresh(config, token, endpoints=endpoints)
        assert message.endswith(" from second"), message
        # The uploader holding this list now goes to the second endpoint first.
        assert endpoints.last_used == "second"
        assert [e.name for e in endpoints.order()] == ["second", "first"]


async def test_a_restart_starts_from_the_endpoint_that_worked_last(tmp_path: Path) -> None:
    path = probe_yaml(tmp_path, "http://127.0.0.1:9")
    data = json.loads(path.read_text())
    data["collector"]["endpoints"] = [{"name": "first", "url": "http://127.0.0.1:9"},
                                      {"name": "second", "url": "http://127.0.0.1:10"}]
    data["collector"]["retry_first_after"] = "1h"
    path.write_text(json.dumps(data))
    config = probe_config.load(path)
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert [e.name for e in known_endpoints(config, now).order()] == ["first", "second"]
    await remembered(config, **{COLLECTOR_PATH: last_path("second", now - timedelta(minutes=5))})
    assert [e.name for e in known_endpoints(config, now).order()] == ["second", "first"]
    # After retry_first_after the first endpoint is tried first again, as in the daemon.
    await remembered(config, **{COLLECTOR_PATH: last_path("second", now - timedelta(hours=2))})
    assert [e.name for e in known_endpoints(config, now).order()] == ["first", "second"]
    # A name no longer listed is ignored.
    await remembered(config, **{COLLECTOR_PATH: last_path("gone", now)})
    assert known_endpoints(config, now).order()[0].name == "first"


async def test_the_daemon_fetches_announced_lists_through_its_announced_endpoint(
        tmp_path: Path) -> None:
    """The running daemon's refresh (after a heartbeat announced a new version) goes through
    the uploader's own list: the configured endpoint is blocked, the announced one serves."""
    lists = tmp_path / "served"
    shutil.copytree(SHIPPED, lists)
    async with running(f"{tmp_path}/k.sqlite",
                       target_lists=TargetListsConfig(directory=str(lists))) as c:
        token = (await c.token("kg-1"))["Authorization"].removeprefix("Bearer ")
        path = probe_yaml(tmp_path, f"http://127.0.0.1:{free_port()}")
        config = probe_config.load(path)
        moved = Announcement(3, datetime.now(UTC) + timedelta(days=1),
                             (Endpoint("moved", base(c)),))
        await remembered(config, **{ANNOUNCED: moved.to_json()})
        link = config.collector
        uploader = FailoverUploader(EndpointList(configured(link.url, link.endpoints)), token,
                                    timeout=2.0)
        daemon, db, _spool = await make_daemon(config, tmp_path, uploader=uploader,
                                               config_path=str(path))
        try:
            await daemon.start()  # the kept announcement comes back
            assert [e.name for e in uploader.endpoints.order()] == ["primary", "moved"]
            await daemon.heartbeat_service.refresh_targets()
            assert "https://kloop.kg/" in daemon.targets
            # Uploads and heartbeats now go to the endpoint that served the lists first.
            assert uploader.endpoints.order()[0].name == "moved"
        finally:
            await daemon.shutdown()
            await db.close()
