"""TCP reachability, the kind of test added through the registry: the measurement against
loopback servers (a listening port, a closed one), its pure verdict, the config section, and
the daemon running it on its own cadence through the real collector, which accepts it with no
edit of its own."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.config import CollectorConfig, Limits
from probe.config.probe_config import ProbeConfig
from probe.core.evidence import Evidence
from probe.core.typed_config import ConfigError, build
from probe.nettests.registry import by_name
from probe.nettests.tcp_reachability import analysis, measure
from probe.nettests.tcp_reachability.nettest import run
from tests.helpers.collector import SwitchableCollector, issue_token
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import loopback_config, make_daemon
from tests.helpers.virtual_clock import VirtualClock
from tests.probe.daemon.test_daemon_platforms import run_for

HOUR = 3600.0


@pytest.fixture
async def listening() -> AsyncIterator[int]:
    """A loopback TCP server that accepts and closes every connection."""
    accepted: list[int] = []

    async def handle(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        await server.wait_closed()


async def test_a_listening_port_is_reachable(listening: int) -> None:
    keys = await measure.measure(f"127.0.0.1:{listening}", timeout=2.0)
    assert keys["addresses"] == ["127.0.0.1"] and keys["dns_failure"] is None
    [connect] = keys["tcp_connect"]
    assert connect["status"]["success"] is True and connect["port"] == listening
    assert analysis.analyze(keys)["verdict"] == "ok"


async def test_a_name_is_resolved_by_the_system_resolver(listening: int) -> None:
    keys = await measure.measure(f"localhost:{listening}", timeout=2.0)
    assert "127.0.0.1" in keys["addresses"]
    assert any(c["status"]["success"] for c in keys["tcp_connect"])


async def test_a_closed_port_is_refused_and_inconclusive() -> None:
    keys = await measure.measure(f"127.0.0.1:{free_port()}", timeout=2.0)
    [connect] = keys["tcp_connect"]
    assert connect["status"] == {"success": False, "failure": "connection_refused",
                                 "x_operation": "connect", "blocked": None}
    verdict = analysis.analyze(keys)
    assert verdict == {"verdict": "inconclusive", "layer": "tcp",
                       "mechanism": "connection_refused", "confidence": 0.0,
                       "evidence": ["tcp:connection_refused"], "analysis_version": 1,
                       "evidence_fields": Evidence().to_wire()}  # no key that fills a field


def test_analysis_of_a_lookup_that_failed() -> None:
    keys = {"addresses": [], "dns_failure": "dns_nxdomain_error", "tcp_connect": []}
    assert analysis.analyze(keys)["layer"] == "dns"
    assert analysis.analyze(keys)["mechanism"] == "dns_nxdomain_error"
    assert analysis.analyze({"tcp_connect": []})["evidence"] == ["dns:no_address"]


@pytest.mark.parametrize("endpoint", ["no-port", "host:", ":80", "host:0", "host:70000"])
def test_bad_endpoints_are_refused(endpoint: str) -> None:
    with pytest.raises(ValueError):
        measure.split_endpoint(endpoint)
    with pytest.raises(ConfigError, match=r"tcp_reachability\.endpoints"):
        build(ProbeConfig, {"tcp_reachability": {"endpoints": [endpoint]}})


def test_ipv6_endpoints_split() -> None:
    assert measure.split_endpoint("[::1]:443") == ("::1", 443)


def test_no_plan_unless_enabled_with_endpoints() -> None:
    kind = by_name("tcp_reachability")
    assert kind.plan(ProbeConfig()) is None
    enabled = build(ProbeConfig, {"tcp_reachability": {"enabled": True,
                                                       "endpoints": ["127.0.0.1:1"]}})
    plan = kind.plan(enabled)
    assert plan is not None and plan.inputs == ("127.0.0.1:1",)
    assert plan.interval == 3600.0


async def test_a_measurement_has_the_envelope_and_the_verdict(listening: int) -> None:
    config = build(ProbeConfig, {"identity": {"probe_id": "p1", "country": "KG",
                                              "asn": "AS8449"}})
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    measurement = await run(config, f"127.0.0.1:{listening}", started)
    assert measurement["test_name"] == "tcp_reachability"
    assert measurement["input"] == f"127.0.0.1:{listening}"
    assert measurement["probe_cc"] == "KG" and measurement["test_version"] == "0.1.0"
    assert measurement["test_keys"]["analysis"]["verdict"] == "ok"


async def test_the_daemon_runs_it_and_the_collector_stores_it(
        fast_disk: Path, collector_config: CollectorConfig, listening: int) -> None:
    collector_config = dataclasses.replace(
        collector_config, limits=dataclasses.replace(Limits(), rate_per_minute=10**7))
    collector = SwitchableCollector(collector_config, free_port())
    token = await issue_token(collector_config, "p-tcp")
    await collector.start()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    clock = VirtualClock(start)
    closed = f"127.0.0.1:{free_port()}"
    reachable = f"127.0.0.1:{listening}"
    try:
        config = loopback_config(
            fast_disk, collector.base, token, [], listening,
            schedule={"interval": "1h", "jitter": 0.2},
            tcp_reachability={"enabled": True, "endpoints": [reachable, closed],
                              "interval": "30m", "timeout": 1})
        daemon, db, spool = await make_daemon(config, fast_disk, clock=clock)
        await run_for(daemon, clock, 3 * HOUR)
        await db.close()
    finally:
        await collector.stop()

    recorded = [e for e in spool.recorded if e.test_name == "tcp_reachability"]
    by_input = {endpoint: [e for e in recorded if e.input == endpoint]
                for endpoint in (reachable, closed)}
    # Every 30 min +-20 % for three hours: about six of each.
    assert all(5 <= len(entries) <= 8 for entries in by_input.values()), by_input
    verdicts = {endpoint: {json.loads(e.body)["test_keys"]["analysis"]["verdict"]
                           for e in entries} for endpoint, entries in by_input.items()}
    assert verdicts == {reachable: {"ok"}, closed: {"inconclusive"}}
    with sqlite3.connect(collector_config.database) as store:
        stored = dict(store.execute("SELECT uid, test_name FROM measurements"))
    uploaded = [e for e in recorded if e.uid in stored]
    # All but those taken after the last upload (every upload interval) reached the store:
    # the collector accepted the new test name with no edit of its own.
    assert len(uploaded) >= len(recorded) - 2, (len(uploaded), len(recorded))
    assert {stored[e.uid] for e in uploaded} == {"tcp_reachability"}
