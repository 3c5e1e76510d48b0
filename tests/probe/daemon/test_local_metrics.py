"""The optional local /metrics: values read from the daemon at scrape time, served by a
real aiohttp server on loopback."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from probe.daemon.local_metrics import MetricsServer, registry_for
from probe.daemon.state import DaemonState
from probe.local.spool import Depth
from tests.helpers.collector import SwitchableCollector, issue_token
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import loopback_config, make_daemon
from tests.helpers.servers import page_app, serve_app


async def test_metrics_follow_the_daemon(tmp_path: Path, collector_config: object) -> None:
    collector = SwitchableCollector(collector_config, free_port())  # type: ignore[arg-type]
    token = await issue_token(collector_config, "p-metrics")  # type: ignore[arg-type]
    await collector.start()
    listen = f"127.0.0.1:{free_port()}"
    try:
        async with serve_app(page_app()) as port:
            url = f"http://127.0.0.1:{port}/"
            config = loopback_config(tmp_path, collector.base, token, [{"url": url}], port,
                                     metrics_listen=listen, budget={"daily_mb": 7})
            daemon, db, _spool = await make_daemon(config, tmp_path)
            registry = registry_for(daemon)
            await daemon.run_once()
            server = MetricsServer(daemon, listen)
            await server.start()
            try:
                async with aiohttp.ClientSession() as session, \
                        session.get(f"http://{listen}/metrics") as response:
                    text = await response.text()
                    assert response.status == 200
            finally:
                await server.stop()
            await db.close()
    finally:
        await collector.stop()

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("kuzot_probe_uploaded_total") == 2.0
    assert value("kuzot_probe_spool_measurements") == 0.0
    assert value("kuzot_probe_measurements_total", test_name="web_connectivity") == 1.0
    assert value("kuzot_probe_measurements_total", test_name="connectivity") == 1.0
    assert value("kuzot_probe_heartbeats_total", outcome="ok") == 1.0
    assert value("kuzot_probe_collector_reachable") == 1.0
    assert value("kuzot_probe_network_online") == 1.0
    assert value("kuzot_probe_data_budget_bytes") == 7_000_000
    assert (value("kuzot_probe_data_used_today_bytes") or 0) > 1000
    assert value("kuzot_probe_target_verdict", target=url, verdict="ok") == 1.0
    assert (value("kuzot_probe_last_upload_timestamp_seconds") or 0) > 1.7e9
    assert value("kuzot_probe_evicted_total") == 0.0
    # The same machine's clock as the collector's: checked, and within the Date header's
    # second (plus the round trip).
    assert value("kuzot_probe_clock_verified") == 1.0
    offset = value("kuzot_probe_clock_offset_seconds")
    assert offset is not None and abs(offset) <= 1.5
    assert f'kuzot_probe_target_verdict{{target="{url}",verdict="ok"}} 1.0' in text


class Written:
    """A state written by hand: the metrics read only ``state()``, never the daemon."""

    def __init__(self, state: DaemonState) -> None:
        self.current = state

    def state(self) -> DaemonState:
        return self.current


def test_metrics_read_a_state_alone() -> None:
    source = Written(DaemonState(
        depth=Depth(3, 3000, None), counters={"quarantined": 1}, heartbeats={"ok": 4},
        upload_failures=2, last_heartbeat=datetime(2026, 12, 1, tzinfo=UTC), reachable=True,
        in_event_window=True, clock_verified=True, clock_offset=-1.5, used_today=99,
        budget=None, latest={"https://kloop.kg/": "blocked"}))
    registry = registry_for(source)

    def value(name: str, labels: dict[str, str] | None = None) -> float | None:
        return registry.get_sample_value(f"kuzot_probe_{name}", labels or {})

    assert value("spool_measurements") == 3 and value("quarantined_total") == 1
    assert value("heartbeats_total", {"outcome": "ok"}) == 4
    assert value("upload_failures") == 2 and value("collector_reachable") == 1
    assert value("event_window") == 1 and value("clock_verified") == 1
    assert value("clock_offset_seconds") == -1.5 and value("data_budget_bytes") == 0
    assert value("last_heartbeat_timestamp_seconds") == datetime(
        2026, 12, 1, tzinfo=UTC).timestamp()
    assert value("target_verdict", {"target": "https://kloop.kg/", "verdict": "blocked"}) == 1
    source.current = DaemonState(depth=Depth(0, 0, None))
    assert value("spool_measurements") == 0 and value("clock_verified") == 0
