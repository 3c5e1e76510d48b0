"""Platform checks and the censor trace in a namespace lab with real router hops.

The probe runs as a real process (``python -m probe ...``) in the client namespace; the
platforms' servers, a public resolver and the collector (as control vantage) run in the world
namespace; the ISP resolver runs on the first router and the censor (iptables) on the second.
Each scenario names what the probe must conclude, as OONI's QA table does. The SNI rules match
port 443 only: a rule on the bare string would also reset the probe's cleartext control
request to the collector, whose JSON body names the URL.

| scenario | censor on r2 / ISP resolver | expected |
|---|---|---|
| clean | none | telegram ok, whatsapp ok |
| IP blocking | DROP to the Telegram DCs | telegram blocked tcp/timeout, telegram_tcp_blocking |
| SNI blocking | REJECT tcp-reset on "web.telegram.org" to :443 | telegram blocked tls/reset |
| DNS blocking | ISP resolver: NXDOMAIN for web.whatsapp.com | whatsapp blocked dns/nxdomain |
| censor trace, reset | as SNI blocking | censor at hop 2 (10.77.1.2), reset injected by TTL |
| censor trace, drop | DROP on "web.telegram.org" to :443 | censor at hop 2, silent drop |
| no CAP_NET_RAW | trace without the capability | failure permission_denied, exit 0 |
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import trustme
from aiohttp import web

from tests.helpers.chainlab import ISP_RESOLVER, PUBLIC_RESOLVER, ChainLab, require_lab_tools
from tests.helpers.paths import REPO
from tests.helpers.processes import without_net_raw
from tests.helpers.servers import NOERROR, NXDOMAIN, DNSServer, page_app, server_context

pytestmark = [pytest.mark.lab, pytest.mark.asyncio(loop_scope="module")]

COLLECTOR = "46.36.200.100"
ZONE = {
    "web.telegram.org": "46.36.200.10",
    "e1.whatsapp.net": "46.36.200.20",
    "e2.whatsapp.net": "46.36.200.20",
    "web.whatsapp.com": "46.36.200.21",
    "v.whatsapp.net": "46.36.200.21",
}
DATACENTERS = ("46.36.200.11", "46.36.200.12")
SERVICES = (*sorted(set(ZONE.values())), *DATACENTERS, PUBLIC_RESOLVER, COLLECTOR)
PLATFORMS_YAML = f"""
timeouts: {{dns: 2s, connect: 1s, tls: 2s, http: 3s, control: 15s}}
platforms:
  telegram:
    groups:
      datacenters: {{addresses: [{", ".join(DATACENTERS)}], ports: [80, 443], exchange: http,
                    need: any}}
      web: {{urls: ["https://web.telegram.org/"]}}
  whatsapp:
    groups:
      endpoints: {{hosts: [e1.whatsapp.net, e2.whatsapp.net], ports: [443, 5222], need: any}}
      registration: {{urls: ["https://v.whatsapp.net/v2/register"]}}
      web: {{urls: ["https://web.whatsapp.com/"]}}
"""


class LabDNS(DNSServer):
    """The shared DNS server, taking any transport (3.11's selector datagram transport is
    not an ``asyncio.DatagramTransport`` subclass, which tests/helpers/servers.py asserts)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]


@dataclass
class Lab:
    chain: ChainLab
    workdir: Path
    ca_file: str
    isp_lies: dict[str, int] = field(default_factory=dict)

    async def probe(self, *args: str) -> tuple[int, str, str]:
        """Run ``python -m probe ARGS`` in the client namespace."""
        return await self.probe_as([], *args)

    async def probe_as(self, prefix: list[str], *args: str) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", self.chain.client, *prefix, sys.executable, "-m", "probe",
            *args, cwd=str(REPO), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode is not None
        return process.returncode, out.decode(), err.decode()

    async def platform(self, name: str) -> dict[str, Any]:
        code, out, err = await self.probe(
            "platform", name, "--platforms", str(self.workdir / "platforms.yaml"),
            "--control", f"http://{COLLECTOR}:8080", "--ca-file", self.ca_file, "--json")
        assert code == 0, err
        measurement: dict[str, Any] = json.loads(out)
        return measurement

    async def trace(self, url: str) -> dict[str, Any]:
        code, out, err = await self.probe("trace", url, "--max-ttl", "6", "--step-timeout",
                                          "0.6", "--json")
        assert code == 0, err
        measurement: dict[str, Any] = json.loads(out)
        return measurement


def _answers(zone: dict[str, str], lies: dict[str, int] | None):  # type: ignore[no-untyped-def]
    def answer(qname: str, qtype: str) -> list[tuple[int, list[str]]]:
        if lies and qname in lies:
            return [(lies[qname], [])]
        if qname in zone:
            return [(NOERROR, [zone[qname]])]
        return [(NXDOMAIN, [])]

    return answer


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def lab(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Lab]:
    require_lab_tools()
    workdir = tmp_path_factory.mktemp("platform-lab")
    ca = trustme.CA()
    ca_file = str(workdir / "ca.pem")
    ca.cert_pem.write_to_path(ca_file)
    (workdir / "platforms.yaml").write_text(PLATFORMS_YAML)
    chain = ChainLab()
    lies: dict[str, int] = {}
    loop = asyncio.get_running_loop()
    cleanups: list[Any] = []
    collector = None
    try:
        chain.up(SERVICES)
        # Resolvers: the ISP's (lies on demand) on r1, a truthful public one in the world.
        for role, address, table in (("r1", ISP_RESOLVER, lies), ("world", PUBLIC_RESOLVER, None)):
            sock = chain.socket_in(role, socket.AF_INET, socket.SOCK_DGRAM, (address, 53))
            transport, _ = await loop.create_datagram_endpoint(
                lambda table=table: LabDNS(_answers(ZONE, table)), sock=sock)
            cleanups.append(transport.close)
        # Web servers with certificates from the lab CA.
        tls = server_context(ca, *ZONE)
        runner = web.AppRunner(page_app())
        await runner.setup()
        cleanups.append(runner.cleanup)
        for address in sorted({ZONE["web.telegram.org"], ZONE["web.whatsapp.com"]}):
            sock = chain.socket_in("world", socket.AF_INET, socket.SOCK_STREAM, (address, 443))
            await web.SockSite(runner, sock, ssl_context=tls).start()
        for address in DATACENTERS:  # Telegram DCs speak plain HTTP on :80 and :443
            for port in (80, 443):
                sock = chain.socket_in("world", socket.AF_INET, socket.SOCK_STREAM,
                                       (address, port))
                await web.SockSite(runner, sock).start()
        for port in (443, 5222):  # WhatsApp chat endpoints: accept, read, close

            async def chat(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                await reader.read(1024)
                writer.close()

            sock = chain.socket_in("world", socket.AF_INET, socket.SOCK_STREAM,
                                   (ZONE["e1.whatsapp.net"], port))
            server = await asyncio.start_server(chat, sock=sock)
            cleanups.append(server.close)
        # The collector, as control vantage, in the world.
        config = workdir / "collector.yaml"
        config.write_text(f"listen: {COLLECTOR}:8080\ndatabase: {workdir / 'kuzot.sqlite'}\n"
                          f"control: {{timeout: 10s, ca_file: {ca_file}}}\n")
        collector = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", chain.world, sys.executable, "-m", "collector", "serve",
            "--config", str(config), cwd=str(REPO), stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL)
        await _wait_until_collector(chain)
        yield Lab(chain, workdir, ca_file, lies)
    finally:
        if collector is not None and collector.returncode is None:
            collector.terminate()
            await collector.wait()
        for cleanup in reversed(cleanups):
            result = cleanup()
            if asyncio.iscoroutine(result):
                await result
        chain.down()


async def _wait_until_collector(chain: ChainLab) -> None:
    """Poll /healthz from inside the world namespace (the host cannot reach the lab)."""
    check = ("import urllib.request,sys;"
             f"sys.exit(0 if urllib.request.urlopen('http://{COLLECTOR}:8080/healthz',"
             "timeout=1).status == 200 else 1)")
    for _ in range(60):
        process = await asyncio.create_subprocess_exec(
            "ip", "netns", "exec", chain.world, sys.executable, "-c", check,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        if await process.wait() == 0:
            return
        await asyncio.sleep(0.2)
    raise AssertionError("collector did not become healthy in the world namespace")


@pytest.fixture
def censor(lab: Lab) -> Any:
    """Rules added by a test are removed after it, and the ISP resolver stops lying."""
    yield lab
    lab.chain.flush_rules()
    lab.isp_lies.clear()


def analysis_of(measurement: dict[str, Any]) -> tuple[str, str | None, str | None]:
    result = measurement["test_keys"]["analysis"]
    return result["verdict"], result["layer"], result["mechanism"]


async def test_clean_network_platforms_ok(censor: Lab) -> None:
    telegram = await censor.platform("telegram")
    assert telegram["test_name"] == "telegram"
    assert analysis_of(telegram) == ("ok", None, None), telegram["test_keys"]["analysis"]
    keys = telegram["test_keys"]
    assert keys["telegram_tcp_blocking"] is False and keys["telegram_http_blocking"] is False
    assert keys["telegram_web_status"] == "ok"
    whatsapp = await censor.platform("whatsapp")
    assert analysis_of(whatsapp) == ("ok", None, None), whatsapp["test_keys"]["x_groups"]
    assert whatsapp["test_keys"]["whatsapp_endpoints_status"] == "ok"


async def test_telegram_blocked_by_ip(censor: Lab) -> None:
    for address in DATACENTERS:
        censor.chain.iptables("r2", "-A", "FORWARD", "-d", address, "-j", "DROP")
    telegram = await censor.platform("telegram")
    assert analysis_of(telegram) == ("blocked", "tcp", "timeout")
    keys = telegram["test_keys"]
    assert keys["x_groups"]["datacenters"]["verdict"] == "blocked"
    assert keys["x_groups"]["web"]["verdict"] == "ok"
    assert keys["telegram_tcp_blocking"] is True and keys["telegram_web_status"] == "ok"


async def test_telegram_web_blocked_by_sni_with_injected_reset(censor: Lab) -> None:
    censor.chain.iptables("r2", "-A", "FORWARD", "-p", "tcp", "--dport", "443",
                          "-m", "string", "--string",
                          "web.telegram.org", "--algo", "bm", "-j", "REJECT",
                          "--reject-with", "tcp-reset")
    telegram = await censor.platform("telegram")
    assert analysis_of(telegram) == ("blocked", "tls", "reset"), json.dumps(
        [(e["analysis"], e.get("x_injection")) for e in telegram["test_keys"]["x_endpoints"]])
    keys = telegram["test_keys"]
    assert keys["telegram_web_status"] == "blocked"
    assert keys["telegram_web_failure"] == "connection_reset"
    assert keys["telegram_tcp_blocking"] is False
    web = next(e for e in keys["x_endpoints"] if e["group"] == "web")
    # The reset comes from r2 (two hops away), the server's SYN-ACK from four hops away.
    injection = web["x_injection"]
    assert injection["injected"] is True, injection
    assert injection["response_packet"]["ttl"] - injection["server_packet"]["ttl"] == 2
    assert "reset:injected" in web["analysis"]["evidence"]
    assert "injected_reset:https://web.telegram.org/" in keys["analysis"]["evidence"]


async def test_whatsapp_web_blocked_by_dns(censor: Lab) -> None:
    censor.isp_lies["web.whatsapp.com"] = NXDOMAIN
    whatsapp = await censor.platform("whatsapp")
    assert analysis_of(whatsapp) == ("blocked", "dns", "nxdomain")
    keys = whatsapp["test_keys"]
    assert keys["whatsapp_web_status"] == "blocked"
    assert keys["whatsapp_web_failure"] == "dns_nxdomain_error"
    assert keys["registration_server_status"] == "ok"
    assert keys["whatsapp_endpoints_status"] == "ok"


async def test_trace_finds_the_resetting_router(censor: Lab) -> None:
    censor.chain.iptables("r2", "-A", "FORWARD", "-p", "tcp", "--dport", "443",
                          "-m", "string", "--string",
                          "web.telegram.org", "--algo", "bm", "-j", "REJECT",
                          "--reject-with", "tcp-reset")
    trace = await censor.trace("https://web.telegram.org/")
    keys = trace["test_keys"]
    assert trace["test_name"] == "censor_trace"
    assert keys["failure"] is None
    assert analysis_of(trace) == ("blocked", "tls", "reset"), keys["analysis"]
    assert keys["censor"]["hop"] == 2 and keys["censor"]["address"] == "10.77.1.2"
    assert keys["censor"]["server_hops"] == 4
    assert [h["icmp_from"] for h in keys["control_hops"][:3]] == [
        "10.77.0.1", "10.77.1.2", "10.77.2.2"]
    assert keys["censor"]["injection"]["injected"] is True
    assert "response:injected" in keys["analysis"]["evidence"]


async def test_trace_finds_the_dropping_router(censor: Lab) -> None:
    censor.chain.iptables("r2", "-A", "FORWARD", "-p", "tcp", "--dport", "443",
                          "-m", "string", "--string",
                          "web.telegram.org", "--algo", "bm", "-j", "DROP")
    trace = await censor.trace("https://web.telegram.org/")
    keys = trace["test_keys"]
    assert analysis_of(trace) == ("blocked", "tls", "timeout"), keys["analysis"]
    assert keys["censor"]["hop"] == 2 and keys["censor"]["address"] == "10.77.1.2"


async def test_trace_without_raw_sockets_is_permission_denied(censor: Lab) -> None:
    drop = without_net_raw([])  # the lab runs as root: this is setpriv dropping it
    code, out, err = await censor.probe_as(drop, "trace", "https://web.telegram.org/", "--json")
    assert code == 0, err
    keys = json.loads(out)["test_keys"]
    assert keys["failure"] == "permission_denied"
    assert keys["analysis"]["verdict"] == "inconclusive"
    assert keys["control_hops"] == [] and keys["trigger_hops"] == []
