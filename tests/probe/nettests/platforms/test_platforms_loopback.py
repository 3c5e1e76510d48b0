"""Platform checks end to end on loopback: real HTTPS and TCP servers, the real collector as
control. Loopback cannot make the probe and the control disagree, so these cover *ok* and
*down*; blocking is shown in the namespace lab (test_platforms_lab.py)."""

from __future__ import annotations

import trustme
from aiohttp.test_utils import TestClient

from probe.cli.main import main
from probe.config import platforms as platform_config
from probe.nettests.control_client import ControlClient
from probe.nettests.platforms import measure as platforms
from tests.helpers.ports import free_port
from tests.helpers.servers import page_app, serve_app, server_context


async def test_youtube_ok_and_a_down_service(
    ca: trustme.CA, ca_file: str, collector_client: TestClient
) -> None:
    control = ControlClient(str(collector_client.make_url("")).rstrip("/"), timeout=10)
    async with serve_app(page_app(), server_context(ca, "localhost")) as port:
        dead = free_port()
        config = platform_config.build_platforms({
            "timeouts": {"dns": 2, "connect": 2, "tls": 2, "http": 3, "control": 10},
            "platforms": {"youtube": {"groups": {
                "web": {"urls": [f"https://localhost:{port}/"]},
                "api": {"addresses": ["127.0.0.1"], "ports": [port]},
                "media": {"addresses": ["127.0.0.1"], "ports": [dead]},
            }}}})
        options = platforms.PlatformOptions(ca_file=ca_file, fingerprint=False)
        keys = await platforms.measure("youtube", config, options, control)
    groups = {name: g["verdict"] for name, g in keys["x_groups"].items()}
    assert groups == {"web": "ok", "api": "ok", "media": "down"}, keys["x_groups"]
    assert keys["analysis"]["verdict"] == "down"
    assert keys["analysis"]["evidence"] == ["web:ok", "api:ok", "media:down:tcp/refused"]
    web = next(e for e in keys["x_endpoints"] if e["group"] == "web")
    assert web["ooni"] == {"blocking": False, "accessible": True}
    assert keys["tcp_connect"] and keys["tls_handshakes"] and keys["requests"]
    # Every endpoint names the control that answered its comparison and the path.
    assert {(e["x_control_endpoint"], e["x_control_path"]) for e in keys["x_endpoints"]} == {
        ("control", "direct")}


def test_bad_input_exits_2() -> None:
    assert main(["platform", "myspace"]) == 2
    assert main(["platform", "telegram", "--control", "ftp://x"]) == 2
    assert main(["trace", "ftp://example.org/"]) == 2
    assert main(["trace", "https://example.org/", "--address", "::1"]) == 2
    assert main(["trace", "https://example.org/", "--max-ttl", "0"]) == 2


def test_unknown_platforms_file_is_a_config_error() -> None:
    assert main(["platform", "telegram", "--platforms", "no-such-file.yaml"]) == 2
