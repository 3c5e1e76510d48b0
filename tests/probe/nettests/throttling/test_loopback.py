"""The throttling plumbing on loopback with real servers: the collector's SNI A/B endpoint, the
timed transfer and its kernel byte-time curve, the budget, and the command line.

No throttle here (loopback cannot be shaped without a namespace): the verdicts under real
shaping and policing are in ``test_lab.py``. A slow server in this file is a real TCP server
that writes slowly, to exercise the time cap and the "slow, not failed" record.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import random
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from collector.app import create_app
from collector.config import CollectorConfig
from collector.vantage.sni_ab import OBJECT_PATH, SniAB, fixed_object
from probe.daemon.budget import ByteBudget
from probe.local.localdb import LocalDB
from probe.nettests.throttling import measure as throttle
from probe.nettests.throttling.sni_ab import fetch_endpoint, parse_endpoint
from probe.netx import tls, transfer
from probe.netx.trace import Trace
from tests.helpers.ports import free_port
from tests.helpers.servers import serve_app, server_context

OBJECT_BYTES = 1 << 20


@contextlib.asynccontextmanager
async def collector(tmp_path: Path, sni_ab: SniAB) -> AsyncIterator[str]:
    config = CollectorConfig(database=str(tmp_path / "kuzot.sqlite"), sni_ab=sni_ab)
    async with TestClient(TestServer(create_app(config))) as client:
        yield str(client.make_url("")).rstrip("/")


def object_app(size: int, rate: float | None = None) -> web.Application:
    """Serves ``size`` bytes; with ``rate`` (bytes/s) it writes them slowly."""
    body = bytes(range(256)) * (size // 256)

    async def serve(request: web.Request) -> web.StreamResponse:
        if rate is None:
            return web.Response(body=body)
        response = web.StreamResponse(headers={"Content-Length": str(len(body))})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for start in range(0, len(body), 2048):
                await response.write(body[start:start + 2048])
                await asyncio.sleep(2048 / rate)
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    return app


async def fetch(port: int, sni: str, *, verify: bool = True, ca_file: str | None = None,
                byte_limit: int = OBJECT_BYTES, transfer_timeout: float = 5.0,
                path: str = "/") -> dict[str, object]:
    return await transfer.fetch(
        "127.0.0.1", port, sni=sni, url=f"https://{sni}:{port}{path}",
        host_header=f"{sni}:{port}", path=path, trace=Trace(),
        context=tls.client_context(ca_file, verify=verify), connect_timeout=2.0,
        tls_timeout=2.0, transfer_timeout=transfer_timeout, byte_limit=byte_limit,
        rng=random.Random(7))


# -- the collector's A/B endpoint -----------------------------------------------------------


async def test_ab_endpoint_serves_one_object_for_any_sni(tmp_path: Path) -> None:
    async with collector(tmp_path, SniAB(listen="127.0.0.1:0",
                                         object_bytes=OBJECT_BYTES)) as base:
        endpoint, failure = await fetch_endpoint(base)
        assert failure is None and endpoint is not None
        assert endpoint.host == "127.0.0.1" and endpoint.path == OBJECT_PATH
        assert endpoint.object_bytes == OBJECT_BYTES
        expected = hashlib.sha256(fixed_object(OBJECT_BYTES)).hexdigest()
        for sni in ("rus.azattyq.org", "example.com", "x.invalid"):
            flow = await fetch(endpoint.port, sni, verify=False, path=endpoint.path)
            assert flow["failure"] is None, flow
            handshake = flow["tls_handshake"]
            assert isinstance(handshake, dict)
            assert handshake["server_name"] == sni
            assert handshake["x_certificates"][0]["sha256"] == endpoint.certificate_sha256
            request = flow["request"]
            assert isinstance(request, dict)
            assert request["response"]["x_body_sha256"] == expected


async def test_ab_endpoint_uses_a_configured_certificate(tmp_path: Path,
                                                         ca: trustme.CA) -> None:
    cert = ca.issue_cert("ab.collector.test")
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_path))
    cert.private_key_pem.write_to_path(str(key_path))
    der = ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())
    sni_ab = SniAB(listen="127.0.0.1:0", cert_file=str(cert_path), key_file=str(key_path),
                   object_bytes=4096, public_host="ab.collector.test")
    async with collector(tmp_path, sni_ab) as base:
        endpoint, failure = await fetch_endpoint(base)
    assert failure is None and endpoint is not None
    assert endpoint.certificate_sha256 == hashlib.sha256(der).hexdigest()
    assert endpoint.host == "ab.collector.test"


async def test_ab_endpoint_disabled_is_a_clear_404(tmp_path: Path) -> None:
    async with collector(tmp_path, SniAB()) as base:
        endpoint, failure = await fetch_endpoint(base)
    assert endpoint is None
    assert failure == "unknown_failure: sni-ab endpoint answered HTTP 404"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "answer is not a JSON object"),
        ({"port": 0}, "port: not a TCP port"),
        ({"port": 8443, "certificate_sha256": "ab"}, "certificate_sha256: not a SHA-256"),
        ({"port": 8443, "certificate_sha256": "a" * 64, "path": "x"}, "path: not an absolute"),
    ],
)
def test_ab_endpoint_answer_is_validated(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_endpoint("http://127.0.0.1:8080", data)


# -- the timed transfer ----------------------------------------------------------------------


async def test_time_capped_transfer_is_slow_not_failed(ca: trustme.CA, ca_file: str) -> None:
    async with serve_app(object_app(OBJECT_BYTES, rate=40_000),
                         server_context(ca, "slow.test")) as port:
        flow = await fetch(port, "slow.test", ca_file=ca_file, transfer_timeout=1.5)
    assert flow["failure"] == "generic_timeout_error"
    assert flow["operation"] == "http_round_trip"
    assert flow["x_slow"] is True
    assert flow["curve_source"] == "tcp_info"
    samples = flow["samples"]
    assert isinstance(samples, list) and len(samples) >= 4
    times = [t for t, _ in samples]
    counts = [n for _, n in samples]
    assert times == sorted(times) and counts == sorted(counts)
    request_t0 = flow["request_t0"]
    assert isinstance(request_t0, float)
    # Bytes kept arriving after the request: the curve grows past the handshake.
    before = max(n for t, n in samples if t <= request_t0)
    assert counts[-1] > before
    # The HTTP record carries the application's goodput too (40 kB/s is 320 kbit/s).
    request = flow["request"]
    assert isinstance(request, dict)
    assert 100e3 < request["x_goodput_bps"] < 1e6


async def test_byte_cap_ends_a_fast_transfer(ca: trustme.CA, ca_file: str) -> None:
    async with serve_app(object_app(4 * OBJECT_BYTES), server_context(ca, "fast.test")) as port:
        flow = await fetch(port, "fast.test", ca_file=ca_file, byte_limit=256 * 1024)
    assert flow["failure"] is None
    request = flow["request"]
    assert isinstance(request, dict)
    assert request["response"]["x_body_length"] == 256 * 1024
    assert request["response"]["body_is_truncated"] is True


async def test_failures_name_their_operation(ca: trustme.CA, ca_file: str) -> None:
    closed_port = free_port()
    refused = await fetch(closed_port, "closed.test", ca_file=ca_file)
    assert (refused["failure"], refused["operation"]) == ("connection_refused", "connect")
    async with serve_app(object_app(4096), server_context(ca, "other.test")) as port:
        wrong = await fetch(port, "wanted.test", ca_file=ca_file)
    assert (wrong["failure"], wrong["operation"]) == ("ssl_invalid_hostname", "tls_handshake")


# -- the whole test on loopback ----------------------------------------------------------------


async def test_measure_respects_the_byte_budget(ca: trustme.CA, ca_file: str,
                                                tmp_path: Path) -> None:
    # 768 KiB a day, 256 KiB per transfer, objects of 300 KiB: the kernel receives the whole
    # object before the abort, so each flow costs a little over 300 KiB. Two flows fit; then
    # less than one transfer's worth is left and the other four are skipped.
    db = await LocalDB.open(str(tmp_path / "probe.sqlite"))
    budget = ByteBudget(3 * 256 * 1024, db)
    options = throttle.ThrottleOptions(
        repetitions=3, byte_limit=256 * 1024, transfer_timeout=2.0, ca_file=ca_file,
        resolve={"target.test": "127.0.0.1", "baseline.test": "127.0.0.1"})
    context = server_context(ca, "target.test", "baseline.test")
    async with serve_app(object_app(300 * 1024), context) as port:
        keys = await throttle.measure(f"https://target.test:{port}/",
                                      f"https://baseline.test:{port}/", options,
                                      budget=budget, rng=random.Random(3))
    assert len(keys["flows"]) == 2
    assert keys["x_budget"]["skipped_flows"] == 4
    used = keys["x_budget"]["bytes_used"]
    assert 2 * 300 * 1024 < used < 2 * 310 * 1024
    assert await budget.remaining() == 3 * 256 * 1024 - used
    assert "budget_skipped_flows:4" in keys["analysis"]["evidence"]
    await db.close()


async def test_ab_flows_cost_exactly_the_measured_bytes(tmp_path: Path) -> None:
    async with collector(tmp_path, SniAB(listen="127.0.0.1:0",
                                         object_bytes=OBJECT_BYTES)) as base:
        endpoint, _ = await fetch_endpoint(base)
        assert endpoint is not None
        options = throttle.ThrottleOptions(repetitions=1, ab_repetitions=2,
                                           byte_limit=64 * 1024,
                                           resolve={"target.test": "127.0.0.1"})
        keys = await throttle.measure("https://target.test:9/", None, options, endpoint)
    ab_flows = keys["sni_ab"]["flows"]
    assert len(ab_flows) == 4
    for flow in ab_flows:
        response = flow["request"]["response"]
        assert response["x_body_length"] == 64 * 1024
        assert response["body_is_truncated"] is False
        # The kernel's count: the object, the response headers and the TLS overhead.
        assert 64 * 1024 < flow["samples"][-1][1] < 72 * 1024


async def test_rounds_are_back_to_back_in_random_order(ca: trustme.CA, ca_file: str) -> None:
    options = throttle.ThrottleOptions(
        repetitions=8, byte_limit=16 * 1024, transfer_timeout=2.0, ca_file=ca_file,
        resolve={"target.test": "127.0.0.1", "baseline.test": "127.0.0.1"})
    context = server_context(ca, "target.test", "baseline.test")
    async with serve_app(object_app(64 * 1024), context) as port:
        keys = await throttle.measure(f"https://target.test:{port}/",
                                      f"https://baseline.test:{port}/", options,
                                      rng=random.Random(11))
    flows = keys["flows"]
    assert [f["round"] for f in flows] == [i for i in range(8) for _ in (0, 1)]
    firsts = {flows[2 * i]["role"] for i in range(8)}
    assert firsts == {"target", "baseline"}  # both orders occur
    assert keys["summary"]["rounds"] == 8
    assert keys["summary"]["same_address"] is True


# -- the command line --------------------------------------------------------------------------


async def run_cli(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "probe", "throttle", *args, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ftp://x/"], "url: not an http(s) URL"),
        (["http://x/"], "url: the throttling test needs an https URL"),
        (["https://x/", "--baseline", "http://y/"], "--baseline: the throttling test needs"),
        (["https://x/", "--repetitions", "0"], "--repetitions: must be positive"),
        (["https://x/", "--transfer-timeout", "soon"], "--transfer-timeout: not a duration"),
        (["https://x/", "--resolve", "x"], "--resolve: not HOST:IP"),
    ],
)
async def test_cli_rejects_bad_input(args: list[str], message: str) -> None:
    code, _, err = await run_cli(*args)
    assert code == 2
    assert message in err


async def test_cli_prints_a_throttling_measurement(ca: trustme.CA, ca_file: str,
                                                   tmp_path: Path) -> None:
    context = server_context(ca, "target.test", "baseline.test")
    async with serve_app(object_app(OBJECT_BYTES), context) as port, \
            collector(tmp_path, SniAB(listen="127.0.0.1:0", object_bytes=OBJECT_BYTES)) as base:
        code, out, err = await run_cli(
            f"https://target.test:{port}/", "--baseline", f"https://baseline.test:{port}/",
            "--sni-ab", base, "--resolve", "target.test:127.0.0.1", "--resolve",
            "baseline.test:127.0.0.1", "--ca-file", ca_file, "--repetitions", "2",
            "--ab-repetitions", "2", "--max-bytes", "65536", "--json", "--cc", "KZ",
            "--asn", "AS9198")
        assert code == 0, err
        measurement = json.loads(out)
        code, table, err = await run_cli(
            f"https://target.test:{port}/", "--resolve", "target.test:127.0.0.1",
            "--ca-file", ca_file, "--repetitions", "1", "--max-bytes", "65536")
    assert measurement["test_name"] == "throttling"
    assert measurement["probe_cc"] == "KZ" and measurement["probe_asn"] == "AS9198"
    keys = measurement["test_keys"]
    assert [f["role"] for f in keys["flows"]].count("target") == 2
    assert {f["role"] for f in keys["sni_ab"]["flows"]} == {"ab_original", "ab_control"}
    assert keys["sni_ab"]["original_sni"] == "target.test"
    assert keys["sni_ab"]["control_sni"] == "baseline.test"
    assert keys["sni_ab_result"]["certificate_ok"] is True
    assert keys["analysis"]["verdict"] in ("ok", "throttled", "inconclusive")
    assert code == 0, err
    assert "verdict" in table and "target.test" in table


def test_options_dataclass_is_frozen() -> None:
    options = throttle.ThrottleOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.repetitions = 5  # type: ignore[misc]


# -- the daemon's round ------------------------------------------------------------------------


async def test_round_measures_targets_with_a_baseline_when_due(
        ca: trustme.CA, ca_file: str, tmp_path: Path) -> None:
    from probe.config import probe_config
    from probe.nettests.throttling.run import run_throttling_round

    context = server_context(ca, "localhost", "127.0.0.1")
    async with serve_app(object_app(OBJECT_BYTES), context) as port, \
            collector(tmp_path, SniAB(listen="127.0.0.1:0", object_bytes=OBJECT_BYTES)) as base:
        path = tmp_path / "probe.yaml"
        path.write_text(
            f"identity: {{probe_id: p1, country: KZ, asn: AS9198}}\n"
            f"collector: {{url: '{base}'}}\n"
            f"ca_file: {ca_file}\n"
            f"targets:\n"
            f"  - {{url: 'https://localhost:{port}/', baseline: 'https://127.0.0.1:{port}/'}}\n"
            f"  - {{url: 'https://localhost:{port}/other'}}\n"
            f"  - {{url: 'https://127.0.0.1:{port}/', role: baseline}}\n"
            f"throttling: {{enabled: true, repetitions: 1, ab_repetitions: 1,\n"
            f"  max_bytes_per_transfer: 65536}}\n")
        config = probe_config.load(path)
        db = await LocalDB.open(str(tmp_path / "probe.sqlite"))
        budget = ByteBudget(config.throttling.daily_budget_bytes, db)
        first = await run_throttling_round(config, budget)
        second = await run_throttling_round(config, ByteBudget(
            config.throttling.daily_budget_bytes, db))
    assert len(first) == 1 and second == []  # one target has a baseline; then not due
    measurement = first[0]
    assert measurement["test_name"] == "throttling"
    assert measurement["input"] == f"https://localhost:{port}/"
    assert (measurement["probe_cc"], measurement["probe_asn"]) == ("KZ", "AS9198")
    keys = measurement["test_keys"]
    assert {f["role"] for f in keys["flows"]} == {"target", "baseline"}
    assert keys["sni_ab_failure"] is None and len(keys["sni_ab"]["flows"]) == 2
    # The allowance and the round's time are in the local database (probe.daemon.budget).
    again = ByteBudget(config.throttling.daily_budget_bytes, db)
    assert await again.used() == keys["x_budget"]["bytes_used"] > 0
    assert await again.last_round() is not None
    await db.close()


async def test_round_is_off_by_default(tmp_path: Path) -> None:
    from probe.config.probe_config import ProbeConfig, Target
    from probe.nettests.throttling.run import run_throttling_round

    config = ProbeConfig(targets=(Target(url="https://a.test/", baseline="https://b.test/"),))
    assert await run_throttling_round(config, ByteBudget(1000)) == []
