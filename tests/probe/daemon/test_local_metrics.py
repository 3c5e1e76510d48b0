"""The optional local /metrics: values read from the daemon at scrape time, served by a
real aiohttp server on loopback."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from probe.daemon.local_metrics import MetricsServer, registry_for
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
