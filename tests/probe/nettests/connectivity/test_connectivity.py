"""The connectivity ladder: an offline machine says so instead of reporting censorship."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from probe.nettests.connectivity.ladder import default_gateway, summarise
from tests.helpers.netns import Namespaces, require


def rung(ok: bool) -> dict[str, object]:
    return {"reachable": ok, "failure": None if ok else "generic_timeout_error"}


@pytest.mark.parametrize(
    ("rungs", "gateway_known", "online", "sentence"),
    [
        ({"gateway": rung(True), "foreign": rung(True)}, True, True, "online"),
        ({"gateway": rung(True), "foreign": rung(False)}, True, False,
         "no connectivity: gateway reachable, foreign hosts unreachable"),
        ({"gateway": rung(False), "foreign": rung(False)}, True, False,
         "no connectivity: gateway unreachable, foreign hosts unreachable"),
        ({"gateway": rung(False), "foreign": rung(False)}, False, False,
         "no connectivity: no default route, foreign hosts unreachable"),
        ({"gateway": rung(True), "resolver": rung(True), "domestic": rung(True),
          "foreign": rung(False)}, True, False,
         "international cut: gateway reachable, resolver answers, domestic hosts reachable, "
         "foreign hosts unreachable"),
        ({"gateway": rung(True), "domestic": rung(False), "foreign": rung(True)}, True, True,
         "online, domestic hosts unreachable"),
        ({"gateway": rung(True), "collector": rung(True)}, True, True, "online"),
    ],
)
def test_summarise(rungs: dict[str, object], gateway_known: bool, online: bool,
                   sentence: str) -> None:
    assert summarise({"rungs": rungs, "gateway_known": gateway_known}) == (online, sentence)


def test_default_gateway_parses_route_table(tmp_path: Path) -> None:
    table = tmp_path / "route"
    table.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
        "eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"
        "eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\n")
    assert default_gateway(str(table)) == "192.168.0.1"
    assert default_gateway(str(tmp_path / "missing")) is None


@pytest.fixture
def isolated_host() -> Iterator[tuple[Namespaces, str]]:
    """A client namespace whose only neighbour is a gateway with no route beyond it."""
    require()
    net = Namespaces.new("kzconn-", ("cli", "gw"))
    try:
        net.create()
        net.link("cli", "eth0", "10.77.0.2/24", "gw", "eth0", "10.77.0.1/24")
        net.ip("cli", "route", "add", "default", "via", "10.77.0.1")
        yield net, "cli"
    finally:
        net.destroy()


@pytest.mark.lab
def test_offline_probe_says_so(isolated_host: tuple[Namespaces, str], tmp_path: Path) -> None:
    """A real network with a gateway but nothing beyond it: the probe reports no
    connectivity and measures no site, so nothing is reported as blocked."""
    net, client = isolated_host
    config = tmp_path / "probe.yaml"
    # 198.51.100.7 is unreachable by construction: the gateway has no route to it.
    config.write_text(
        "identity: {probe_id: t, country: KG}\n"
        "collector: {url: 'http://10.77.0.1:8080'}\n"
        "targets: [{url: 'https://kloop.kg/'}]\n"
        "ladder: {foreign: ['198.51.100.7:443'], resolver_name: localhost, timeout: 1.5}\n"
        "consent: {accepted: true, notice_version: 1}\n")  # `probe run` requires it
    result = net.run(client, sys.executable, "-m", "probe", "run", "--config", str(config),
                     "--once")
    assert result.returncode == 0, result.stderr
    assert "no connectivity: gateway reachable, resolver answers, foreign hosts unreachable" \
        in result.stderr
    assert "kloop.kg" not in result.stderr
