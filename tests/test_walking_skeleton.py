"""The whole path once, on real parts: probe CLI -> collector -> SQLite -> /metrics.

A real HTTPS server (trustme certificate) plays the site; the real collector runs as a child
process on a loopback port and is also the control vantage.
"""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import trustme

from tests.helpers.collector_process import cli, serve
from tests.helpers.processes import run_python
from tests.helpers.servers import page_app, serve_app, server_context


async def test_probe_to_collector_to_metrics(tmp_path: Path, ca: trustme.CA, ca_file: str) -> None:
    database = tmp_path / "kuzot.sqlite"
    config = tmp_path / "collector.yaml"
    config.write_text(
        f"database: {database}\n"
        f"control: {{allow_private_addresses: true, ca_file: {ca_file}}}\n")
    code, token, err = await cli("token", "issue", "--probe-id", "p1", "--config", str(config))
    assert code == 0, err
    token = token.strip()
    async with serve("--config", str(config)) as collector:
        base = collector.base
        async with serve_app(page_app(), server_context(ca, "localhost")) as site_port:
            url = f"https://localhost:{site_port}/"
            code, out, err = await run_python("-m", "probe", "check", url, "--control", base,
                                              "--ca-file", ca_file, "--json", "--cc", "KG",
                                              "--asn", "AS8449")
        assert code == 0, err
        measurement = json.loads(out)
        assert measurement["test_name"] == "web_connectivity"
        assert measurement["probe_ip"] == "127.0.0.1"
        keys = measurement["test_keys"]
        assert keys["analysis"]["verdict"] == "ok", keys["analysis"]
        assert keys["blocking"] is False and keys["accessible"] is True
        assert keys["control_failure"] is None
        assert keys["requests"][0]["response"]["code"] == 200

        async with aiohttp.ClientSession() as session:
            headers = {"Authorization": f"Bearer {token}"}
            async with session.post(base + "/api/v1/measurements", json=measurement,
                                    headers=headers) as response:
                assert response.status == 200, await response.text()
                assert (await response.json())["stored"] == [measurement["measurement_uid"]]
            async with session.post(base + "/api/v1/measurements", json=measurement) as response:
                assert response.status == 401
            async with session.get(base + "/metrics") as response:
                metrics = await response.text()
            async with session.get(base + "/api/v1/measurements?cc=KG") as response:
                listed = (await response.json())["measurements"]
        line = ('kuzot_measurements_received_total{asn="AS8449",cc="KG",'
                'test_name="web_connectivity",verdict="ok"} 1.0')
        assert line in metrics
        assert "kuzot_measurements_stored 1.0" in metrics
        assert [m["uid"] for m in listed] == [measurement["measurement_uid"]]
        collector.process.terminate()
        await collector.process.wait()
    # Durable: the row is in the SQLite file after the collector has gone.
    import sqlite3

    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT uid, verdict FROM measurements").fetchall()
    assert rows == [(measurement["measurement_uid"], "ok")]
