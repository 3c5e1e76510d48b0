"""Collector endpoint failover (probe.daemon.endpoints) on real loopback servers: a first endpoint
that refuses or resets, a second that answers, and the memory of which one worked."""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import ssl
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web

from collector.config import CollectorConfig
from probe.config.probe_config import ProbeConfig
from probe.core.typed_config import ConfigError, build
from probe.daemon.endpoints import Endpoint, EndpointList, FailoverUploader, configured
from probe.daemon.uploader import Uploader, UploadError
from tests.helpers.collector import SwitchableCollector, issue_token
from tests.helpers.connect_proxy import ConnectProxy
from tests.helpers.ports import free_port
from tests.helpers.probe_setup import loopback_config, make_daemon
from tests.helpers.servers import serve_app, server_context


def measurement(index: int) -> dict[str, Any]:
    return {"measurement_uid": f"20260101000000.{index:06d}_KG_web_{index:016x}",
            "test_name": "web_connectivity", "probe_cc": "KG"}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


RESETS: list[int] = []


async def resetting_server() -> tuple[asyncio.Server, int]:
    """Accepts and resets every connection (RST, as a censor's middlebox does); each reset
    appends the port to RESETS."""

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        RESETS.append(writer.get_extra_info("sockname")[1])
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    server = await asyncio.start_server(reset, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture
async def collector() -> AsyncIterator[tuple[str, list[str]]]:
    """A real aiohttp server acknowledging batches; yields its URL and the uids received."""
    received: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        batch = json.loads(await request.read())["measurements"]
        received.extend(m["measurement_uid"] for m in batch)
        return web.json_response({"stored": [m["measurement_uid"] for m in batch]})

    app = web.Application()
    app.router.add_post("/api/v1/measurements", handler)
    async with serve_app(app) as port:
        yield f"http://127.0.0.1:{port}", received


async def upload_via(endpoints: EndpointList, batch: list[dict[str, Any]]
                     ) -> tuple[list[str], Endpoint]:
    async def attempt(endpoint: Endpoint) -> list[str]:
        uploader = Uploader(endpoint.url, None, timeout=5.0)
        return await uploader.upload(batch)

    return await endpoints.call(attempt)


async def test_a_refusing_first_endpoint_fails_over_and_the_batch_arrives_once(
        collector: tuple[str, list[str]]) -> None:
    url, received = collector
    endpoints = EndpointList([Endpoint("first", f"http://127.0.0.1:{free_port()}"),
                              Endpoint("second", url)])
    stored, used = await upload_via(endpoints, [measurement(1)])
    assert used.name == "second" and endpoints.last_used == "second"
    assert stored == received == [measurement(1)["measurement_uid"]]


async def test_a_resetting_first_endpoint_fails_over_and_is_remembered(
        collector: tuple[str, list[str]]) -> None:
    url, received = collector
    server, port = await resetting_server()
    clock = Clock()
    endpoints = EndpointList([Endpoint("first", f"http://127.0.0.1:{port}"),
                              Endpoint("second", url)], retry_first_after=600, clock=clock)
    try:
        await upload_via(endpoints, [measurement(1)])
        assert [e.name for e in endpoints.order()] == ["second", "first"]
        clock.now = 599
        _, used = await upload_via(endpoints, [measurement(2)])
        assert used.name == "second"
        clock.now = 1200  # long enough: the first endpoint is tried again, fails, second works
        assert [e.name for e in endpoints.order()] == ["first", "second"]
        _, used = await upload_via(endpoints, [measurement(3)])
        assert used.name == "second"
        assert RESETS.count(port) == 2  # tried at first and after retry_first_after only
    finally:
        server.close()
        await server.wait_closed()
    assert received == [measurement(i)["measurement_uid"] for i in (1, 2, 3)]


async def test_a_collector_answer_does_not_fail_over() -> None:
    seen: list[str] = []

    async def attempt(endpoint: Endpoint) -> None:
        seen.append(endpoint.name)
        raise UploadError("HTTP 422: bad", True, kind="rejected", status=422)

    endpoints = EndpointList([Endpoint("a", "http://a.test"), Endpoint("b", "http://b.test")])
    with pytest.raises(UploadError) as info:
        await endpoints.call(attempt)
    assert info.value.kind == "rejected" and seen == ["a"]


async def test_every_endpoint_down_raises_the_last_network_failure() -> None:
    endpoints = EndpointList([Endpoint("a", f"http://127.0.0.1:{free_port()}"),
                              Endpoint("b", f"http://127.0.0.1:{free_port()}")])
    with pytest.raises(UploadError) as info:
        await upload_via(endpoints, [measurement(1)])
    assert info.value.kind == "network" and endpoints.last_used is None


def test_config_takes_an_ordered_list_and_keeps_the_single_url_form() -> None:
    single = build(ProbeConfig, {"collector": {"url": "https://c.example"}})
    assert configured(single.collector.url, single.collector.endpoints) == (
        Endpoint("primary", "https://c.example"),)
    many = build(ProbeConfig, {"collector": {"endpoints": [
        {"name": "main", "url": "https://c.example"},
        {"name": "backup", "url": "https://c2.example"}], "retry_first_after": "30m"}})
    assert [e.name for e in configured(many.collector.url, many.collector.endpoints)] == [
        "main", "backup"]
    assert many.collector.retry_first_after == 1800.0


@pytest.mark.parametrize(("endpoints", "message"), [
    ([{"name": "a", "url": "ftp://x"}], "collector.endpoints[0].url: not an http(s) URL"),
    ([{"name": "a b", "url": "https://x"}], "collector.endpoints[0].name: must be 1-40"),
    ([{"name": "a", "url": "https://x"}, {"name": "a", "url": "https://y"}],
     "collector.endpoints: endpoint names must be unique"),
    ([{"name": "a", "url": "https://x", "via": "z"}], "collector.endpoints[0].via: unknown key"),
])
def test_bad_endpoints_name_their_key_path(endpoints: list[dict[str, str]], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(ProbeConfig, {"collector": {"endpoints": endpoints}})
    assert str(info.value).startswith(message)


def test_an_endpoint_needs_a_name_and_a_url() -> None:
    with pytest.raises(ConfigError) as info:
        build(ProbeConfig, {"collector": {"endpoints": [{"url": "https://x"}]}})
    assert str(info.value) == "collector.endpoints[0].name: required key is missing"


async def test_the_daemon_fails_over_to_the_real_collector_and_says_which_endpoint(
        tmp_path: Path, collector_config: CollectorConfig) -> None:
    """The first endpoint resets every connection; every measurement reaches the real
    collector exactly once through the second, and the next heartbeat names that endpoint."""
    from tests.probe.daemon.test_upload import measurement as full_measurement

    collector = SwitchableCollector(collector_config, free_port())
    token = await issue_token(collector_config, "p-failover")
    server, port = await resetting_server()
    await collector.start()
    try:
        config = loopback_config(tmp_path, collector.base, token, [], 9)
        endpoints = EndpointList([Endpoint("first", f"http://127.0.0.1:{port}"),
                                  Endpoint("second", collector.base)])
        uploader = FailoverUploader(endpoints, token, timeout=2.0)
        daemon, db, _ = await make_daemon(config, tmp_path, uploader=uploader)
        await daemon.start()
        for index in range(5):
            await daemon.record(full_measurement(index))
        daemon.reachable = True
        await daemon._upload()
        await daemon._upload()  # nothing left: nothing sent twice
        await daemon._heartbeat()
        await daemon.shutdown()
        await db.close()
    finally:
        await collector.stop()
        server.close()
        await server.wait_closed()
    with sqlite3.connect(collector_config.database) as store:
        uids = [row[0] for row in store.execute("SELECT uid FROM measurements")]
        beats = [json.loads(row[0]) for row in store.execute("SELECT body FROM heartbeats")]
    assert sorted(uids) == sorted(full_measurement(i)["measurement_uid"] for i in range(5))
    assert beats and beats[-1]["collector_endpoint"] == "second"
    assert port in RESETS  # the first endpoint was tried and reset
    assert "127.0.0.1" not in json.dumps(beats[-1]["collector_endpoint"])


@pytest.fixture
async def tls_collector(ca: trustme.CA) -> AsyncIterator[tuple[int, list[dict[str, str]]]]:
    """A TLS server with a certificate for collector.test only, on loopback; yields its port
    and, per request, the Host header and the TLS server name the client sent."""
    seen: list[dict[str, str]] = []

    async def handler(request: web.Request) -> web.Response:
        ssl_object = request.transport.get_extra_info("ssl_object")  # type: ignore[union-attr]
        seen.append({"host": request.headers["Host"],
                     "sni": getattr(ssl_object, "sni", "")})
        batch = json.loads(await request.read())["measurements"]
        return web.json_response({"stored": [m["measurement_uid"] for m in batch]})

    context = server_context(ca, "collector.test")

    def remember_sni(sock: ssl.SSLObject, name: str | None, _: ssl.SSLContext) -> None:
        sock.sni = name or ""  # type: ignore[attr-defined]

    context.sni_callback = remember_sni  # type: ignore[assignment]
    app = web.Application()
    app.router.add_post("/api/v1/measurements", handler)
    async with serve_app(app, context) as port:
        yield port, seen


async def test_a_fronted_endpoint_connects_to_the_front_with_host_and_sni_of_the_real_name(
        tls_collector: tuple[int, list[dict[str, str]]], ca_file: str) -> None:
    port, seen = tls_collector
    endpoints = EndpointList([
        Endpoint("wrong-name", f"https://other.test:{port}", front="127.0.0.1"),
        Endpoint("cdn", f"https://collector.test:{port}", front="127.0.0.1")])
    uploader = FailoverUploader(endpoints, None, ca_file, timeout=5.0, compress=False)
    stored = await uploader.upload([measurement(1)])
    await uploader.close()
    # other.test's certificate check fails (the name is checked, not the front's address),
    # so the batch went through the second endpoint only, named by the real host.
    assert stored == [measurement(1)["measurement_uid"]]
    assert uploader.endpoint_used == "cdn"
    assert seen == [{"host": f"collector.test:{port}", "sni": "collector.test"}]


@pytest.mark.parametrize("front", ["cdn.example/x", "a:443", ""])
def test_a_front_is_a_bare_host(front: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(ProbeConfig, {"collector": {"endpoints": [
            {"name": "a", "url": "https://x", "front": front}]}})
    assert str(info.value).startswith("collector.endpoints[0].front: must be a bare host")


async def test_uploads_go_through_an_http_connect_proxy_which_resolves_the_name(
        tls_collector: tuple[int, list[dict[str, str]]], ca_file: str) -> None:
    port, seen = tls_collector
    proxy = ConnectProxy(hosts={"collector.test": "127.0.0.1"})
    await proxy.start()
    try:
        uploader = FailoverUploader(
            EndpointList([Endpoint("main", f"https://collector.test:{port}")]), None, ca_file,
            timeout=5.0, proxy=f"http://127.0.0.1:{proxy.port}")
        stored = await uploader.upload([measurement(1)])
        await uploader.close()
    finally:
        await proxy.stop()
    assert stored == [measurement(1)["measurement_uid"]]
    assert proxy.targets == [f"collector.test:{port}"]
    assert seen == [{"host": f"collector.test:{port}", "sni": "collector.test"}]


@pytest.mark.parametrize("proxy", ["socks4://127.0.0.1:9050", "http://127.0.0.1", "x"])
def test_the_proxy_is_a_proxy_url(proxy: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(ProbeConfig, {"collector": {"proxy": proxy}})
    assert str(info.value).startswith("collector.proxy: not a proxy URL")
