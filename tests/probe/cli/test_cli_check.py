"""``python -m probe check``: the human table, the JSON measurement and bad input (exit 2)."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
import trustme

from probe.cli.main import main
from probe.core.model import Measurement
from tests.helpers.servers import page_app, serve_app, server_context


async def _run(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "probe", "check", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_table_and_json(ca: trustme.CA, ca_file: str) -> None:
    async with serve_app(page_app(), server_context(ca, "localhost")) as port:
        url = f"https://localhost:{port}/"
        code, table, err = await _run(url, "--ca-file", ca_file)
        assert code == 0, err
        code, out, err = await _run(url, "--ca-file", ca_file, "--json")
        assert code == 0, err
    lines = table.splitlines()
    assert lines[0].split() == ["url", url]
    assert lines[1].startswith("verdict    ok")  # a validated HTTPS page needs no control
    assert any(line.startswith("tls ") and "issuer=" in line for line in lines)
    assert any(line.startswith("http ") and "ttfb=" in line for line in lines)
    measurement = json.loads(out)
    keys = measurement["test_keys"]
    assert keys["control_failure"] == "unknown_failure: no control configured"
    assert keys["requests"][0]["response"]["code"] == 200
    assert keys["tls_handshakes"][0]["x_certificates"][0]["dns_names"] == ["localhost"]
    assert (keys["blocking"], keys["accessible"]) == (False, True)  # validated HTTPS page
    assert keys["analysis"]["verdict"] == "ok"
    # The typed model reads the real measurement and writes back the bytes it printed.
    model = Measurement.from_wire(measurement)
    assert json.dumps(model.to_wire(), ensure_ascii=False) == \
        json.dumps(measurement, ensure_ascii=False)
    assert model.analysis is not None and model.analysis.evidence_fields is not None
    assert model.analysis.evidence_fields.control_unavailable is True


@pytest.mark.parametrize("args", [
    ["ftp://example.org/"],
    ["https://example.org/", "--resolver", "not-an-ip:99999"],
    ["https://example.org/", "--resolver", "999.1.1.1"],
    ["https://example.org/", "--resolver", "dns.example"],
    ["https://example.org/", "--resolver", "[::1]"],
    ["https://example.org/", "--control", "http://127.0.0.1:8080/api/v1/control"],
    ["https://example.org/", "--doh", "http://plain.example/dns-query"],
    ["https://example.org/", "--ca-file", "/nonexistent/ca.pem"],
])
def test_bad_input_exits_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", *args]) == 2
    assert capsys.readouterr().err.startswith("error: ")


@pytest.mark.parametrize("resolver", ["192.0.2.1", "192.0.2.1:5353", "2001:db8::1",
                                      "[2001:db8::1]:5353"])
def test_resolver_forms_the_measurement_reads_are_accepted(resolver: str) -> None:
    from probe.cli.main import _resolver_problem

    assert _resolver_problem(resolver) is False
