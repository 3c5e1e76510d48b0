"""Reaching the collector and its controls when they are blocked: a SOCKS5 proxy (Tor's
port) with names resolved by the proxy, several controls with failover and memory, and the
measurement, the heartbeat and ``probe status`` naming the control and the path. Real
loopback servers only: a SOCKS5 server, the real collector as control, refusing ports."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from collector.config import Control
from probe.cli import status
from probe.config.probe_config import ProbeConfig
from probe.core.typed_config import ConfigError, build
from probe.daemon.endpoints import Endpoint, EndpointList, FailoverUploader
from probe.nettests.control_client import ControlClient
from probe.nettests.web_connectivity import measure as web_check
from probe.netx import proxy
from tests.helpers.collector_app import running
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import loopback_config, make_daemon
from tests.helpers.servers import page_app, serve_app
from tests.helpers.socks5_server import Socks5Server
from tests.probe.daemon.test_endpoints import (  # noqa: F401 (fixtures)
    collector,
    measurement,
    tls_collector,
)


@pytest.mark.parametrize("value", ["http://127.0.0.1:3128", "socks5h://127.0.0.1:9050",
                                   "socks5://localhost:1080/", "socks5h://[::1]:9050"])
def test_a_proxy_is_http_connect_or_socks5(value: str) -> None:
    assert build(ProbeConfig, {"collector": {"proxy": value}}).collector.proxy == value


@pytest.mark.parametrize("value", ["socks4://127.0.0.1:9050", "http://127.0.0.1", "x",
                                   "socks5h://127.0.0.1:0", "socks5h://u:p@127.0.0.1:9050"])
def test_anything_else_is_refused_with_the_key_path(value: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(ProbeConfig, {"collector": {"proxy": value}})
    assert str(info.value).startswith("collector.proxy: not a proxy URL")


@pytest.mark.parametrize("fronted, value, expected", [
    (False, None, "direct"), (True, None, "front"),
    (False, "http://127.0.0.1:3128", "http_proxy"),
    (False, "socks5h://127.0.0.1:9050", "socks5"),
    (True, "http://127.0.0.1:3128", "http_proxy+front"),
])
def test_the_path_names(fronted: bool, value: str | None, expected: str) -> None:
    assert proxy.path_of(fronted, value) == expected


@pytest.fixture
async def socks() -> AsyncIterator[Socks5Server]:
    server = Socks5Server(hosts={"collector.test": "127.0.0.1", "front.test": "127.0.0.1"})
    await server.start()
    yield server
    await server.stop()


async def test_uploads_through_socks5_leave_the_name_to_the_proxy(
        tls_collector: tuple[int, list[dict[str, str]]], ca_file: str,  # noqa: F811
        socks: Socks5Server) -> None:
    """As through Tor: collector.test is resolved by nobody but the proxy (it is in no
    resolver here), and TLS still checks the certificate for that name."""
    port, seen = tls_collector
    uploader = FailoverUploader(EndpointList([Endpoint("main", f"https://collector.test:{port}")]),
                                None, ca_file, timeout=5.0, proxy=socks.url)
    stored = await uploader.upload([measurement(1)])
    await uploader.close()
    assert stored == [measurement(1)["measurement_uid"]]
    assert socks.connects == [("domain", "collector.test", port)]
    assert seen == [{"host": f"collector.test:{port}", "sni": "collector.test"}]
    assert (uploader.endpoint_used, uploader.path_used) == ("main", "socks5")


async def test_socks5_with_local_names_sends_the_proxy_an_address(
        collector: tuple[str, list[str]], socks: Socks5Server) -> None:  # noqa: F811
    url, received = collector
    uploader = FailoverUploader(
        EndpointList([Endpoint("main", url.replace("127.0.0.1", "localhost"))]), None,
        timeout=5.0, proxy=f"socks5://127.0.0.1:{socks.port}")
    assert await uploader.upload([measurement(4)]) == [measurement(4)["measurement_uid"]]
    await uploader.close()
    assert received == [measurement(4)["measurement_uid"]]
    [(kind, _host, port)] = socks.connects
    assert kind in ("ipv4", "ipv6")  # resolved here, not by the proxy
    assert port == int(url.rsplit(":", 1)[1])


async def test_through_socks5_a_fronted_endpoint_is_reached_at_its_own_name(
        tls_collector: tuple[int, list[dict[str, str]]], ca_file: str,  # noqa: F811
        socks: Socks5Server) -> None:
    port, seen = tls_collector
    uploader = FailoverUploader(
        EndpointList([Endpoint("cdn", f"https://collector.test:{port}", front="front.test")]),
        None, ca_file, timeout=5.0, proxy=socks.url)
    assert await uploader.upload([measurement(2)]) == [measurement(2)["measurement_uid"]]
    await uploader.close()
    assert socks.connects == [("domain", "collector.test", port)]
    assert seen == [{"host": f"collector.test:{port}", "sni": "collector.test"}]
    assert uploader.path_used == "socks5"


async def test_a_dead_proxy_is_a_network_failure_and_the_batch_waits(
        ca_file: str) -> None:
    from probe.daemon.uploader import UploadError

    uploader = FailoverUploader(EndpointList([Endpoint("main", "https://collector.test:1")]),
                                None, ca_file, timeout=5.0,
                                proxy=f"socks5h://127.0.0.1:{free_port()}")
    with pytest.raises(UploadError) as info:
        await uploader.upload([measurement(3)])
    await uploader.close()
    assert info.value.kind == "network"


@pytest.fixture
async def control_collector(tmp_path: Path) -> AsyncIterator[str]:
    """The real collector, whose control may fetch loopback pages; yields its base URL."""
    control = dataclasses.replace(Control(), allow_private_addresses=True, timeout=5.0)
    async with running(f"{tmp_path}/c.sqlite", control=control) as c:
        yield str(c.client.make_url("")).rstrip("/")


async def busy_control() -> web.Application:
    async def busy(request: web.Request) -> web.Response:
        return web.json_response({"error": "busy"}, status=503)

    app = web.Application()
    app.router.add_post("/api/v1/control", busy)
    return app


async def test_the_control_client_fails_over_remembers_and_says_which_answered(
        control_collector: str) -> None:
    refused = f"http://127.0.0.1:{free_port()}"
    async with serve_app(page_app()) as site:
        url = f"http://127.0.0.1:{site}/"
        client = ControlClient(timeout=5.0, endpoints=EndpointList([
            Endpoint("first", refused), Endpoint("second", control_collector)]))
        answer = await client.measure_via(url, [])
        assert answer.view is not None and answer.view["http_request"]["status_code"] == 200
        assert (answer.endpoint, answer.path, answer.tried) == ("second", "direct",
                                                                 ("first", "second"))
        assert not answer.blocked and not client.blocked
        again = await client.measure_via(url, [])
        assert again.tried == ("second",)  # remembered
        assert client.url == control_collector + "/api/v1/control"


async def test_every_control_unreachable_is_blocked_but_a_busy_one_is_not() -> None:
    client = ControlClient(timeout=3.0, endpoints=EndpointList([
        Endpoint("a", f"http://127.0.0.1:{free_port()}"),
        Endpoint("b", f"http://127.0.0.1:{free_port()}")]))
    answer = await client.measure_via("http://127.0.0.1:9/", [])
    assert answer.view is None and answer.endpoint is None
    assert answer.failure == "connection_refused"
    assert answer.blocked and client.blocked
    async with serve_app(await busy_control()) as busy:
        client = ControlClient(timeout=3.0, endpoints=EndpointList([
            Endpoint("a", f"http://127.0.0.1:{free_port()}"),
            Endpoint("busy", f"http://127.0.0.1:{busy}")]))
        answer = await client.measure_via("http://127.0.0.1:9/", [])
    assert answer.failure == "unknown_failure: control answered HTTP 503"
    assert not answer.blocked


async def test_a_control_through_socks5(control_collector: str, socks: Socks5Server) -> None:
    port = int(control_collector.rsplit(":", 1)[1])
    socks.hosts["control.test"] = "127.0.0.1"
    async with serve_app(page_app()) as site:
        client = ControlClient(timeout=5.0, proxy=socks.url, endpoints=EndpointList([
            Endpoint("tor", f"http://control.test:{port}")]))
        answer = await client.measure_via(f"http://127.0.0.1:{site}/", [])
    assert (answer.endpoint, answer.path) == ("tor", "socks5")
    assert ("domain", "control.test", port) in socks.connects


async def test_a_measurement_names_the_control_and_keeps_its_verdict(
        control_collector: str, tmp_path: Path) -> None:
    """The first control is blocked (refused): the site's verdict still comes from a control
    (ok, not inconclusive), and the measurement says which one and how."""
    async with serve_app(page_app()) as site:
        config = loopback_config(tmp_path, control_collector, None, [], site, controls=[
            {"name": "blocked", "url": f"http://127.0.0.1:{free_port()}"},
            {"name": "backup", "url": control_collector}])
        from probe.nettests import runner as rounds

        client = rounds.control_client(config)
        keys = await web_check.measure(f"http://127.0.0.1:{site}/", rounds.web_options(config),
                                       client)
    assert keys["x_control_endpoint"] == "backup" and keys["x_control_path"] == "direct"
    assert keys["x_controls_blocked"] is False and keys["control_failure"] is None
    assert keys["analysis"]["verdict"] == "ok"


def test_without_controls_the_control_is_the_collector_with_its_endpoints(
        tmp_path: Path) -> None:
    from probe.nettests import runner as rounds

    config = loopback_config(tmp_path, "http://127.0.0.1:1", None, [], 1, collector={
        "endpoints": [{"name": "main", "url": "http://127.0.0.1:1"},
                      {"name": "cdn", "url": "https://collector.test", "front": "front.test"}],
        "proxy": "socks5h://127.0.0.1:9050"})
    client = rounds.control_client(config)
    assert [e.name for e in client.endpoints.endpoints] == ["main", "cdn"]
    assert client.proxy == "socks5h://127.0.0.1:9050"
    explicit = dataclasses.replace(config, control_url="http://127.0.0.1:2")
    assert [e.url for e in rounds.control_client(explicit).endpoints.endpoints] == [
        "http://127.0.0.1:2"]


async def test_a_probe_cut_off_every_control_says_so_in_heartbeat_and_status(
        tmp_path: Path) -> None:
    async with serve_app(page_app()) as site:
        config = loopback_config(
            tmp_path, f"http://127.0.0.1:{free_port()}", None,
            [{"url": f"http://127.0.0.1:{site}/"}], site,
            controls=[{"name": "a", "url": f"http://127.0.0.1:{free_port()}"},
                      {"name": "b", "url": f"http://127.0.0.1:{free_port()}"}])
        daemon, db, spool = await make_daemon(config, tmp_path)
        try:
            await daemon.run_once()
            body: dict[str, Any] = daemon._heartbeat_body(datetime.now(UTC))
        finally:
            await db.close()
    [web_entry] = [e for e in spool.recorded if e.test_name == "web_connectivity"]
    keys = json.loads(web_entry.body)["test_keys"]
    assert keys["x_controls_blocked"] is True and keys["x_control_endpoint"] is None
    assert keys["analysis"]["verdict"] == "inconclusive"
    assert body["controls_blocked"] is True and body["control_endpoint"] is None
    report = status.gather(config, datetime.now(UTC))
    assert report["controls"]["blocked"] is True
    assert "every control unreachable" in status.render(report, datetime.now(UTC))
