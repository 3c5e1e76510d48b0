"""One round of the daemon in a fresh process, reporting whether it loaded scapy.

    python -m tests.helpers.footprint_round DIRECTORY [--reset]

Run by ``tests/probe/daemon/test_footprint.py`` in a subprocess, because ``sys.modules`` of the test
process holds whatever other tests imported. The round is real: loopback sites, a platform
check with reset fingerprinting on, the daemon's own raw-socket check at start, the real
spool, the real collector as control (uploads go nowhere). With ``--reset`` the platform's
web endpoint resets every request (for the control too: the check is *down* with a reset at
the HTTP layer), so the platform check asks for a raw-packet fingerprint. Prints one JSON
object.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any


def scapy_loaded() -> bool:
    return any(name == "scapy" or name.startswith("scapy.") for name in sys.modules)


async def round_of_sites(directory: Path, reset: bool) -> dict[str, Any]:
    report: dict[str, Any] = {}
    import probe.daemon.loop  # noqa: F401  (the daemon and everything it imports at start)

    report["after_import"] = scapy_loaded()
    from collector.config import Auth, CollectorConfig, Control
    from probe.netx import packet
    from tests.helpers.collector import SwitchableCollector
    from tests.helpers.ports import free_port
    from tests.helpers.probe_setup import loopback_config, make_daemon
    from tests.helpers.servers import page_app, serve_app, tcp_behaviour

    closed = f"http://127.0.0.1:{free_port()}"
    collector = SwitchableCollector(CollectorConfig(
        database=str(directory / "kuzot.sqlite"), auth=Auth(require_token=False),
        control=Control(allow_private_addresses=True)), free_port())
    await collector.start()
    try:
        async with serve_app(page_app()) as port, tcp_behaviour("reset") as resetting:
            web_port = resetting if reset else port
            platforms = directory / "platforms.yaml"
            platforms.write_text(json.dumps({"platforms": {"youtube": {"groups": {
                "web": {"urls": [f"http://127.0.0.1:{web_port}/yt"]},
                "api": {"addresses": ["127.0.0.1"], "ports": [port]}}}}}))
            targets = [{"url": f"http://127.0.0.1:{port}/{i}"} for i in range(4)]
            config = loopback_config(directory, closed, "t", targets, port,
                                     control_url=collector.base,
                                     platforms={"file": str(platforms), "fingerprint": True})
            daemon, db, spool = await make_daemon(config, directory)
            await daemon.run_once()
            await db.close()
    finally:
        await collector.stop()
    report["measured"] = sorted({e.test_name for e in spool.recorded})
    report["count"] = len(spool.recorded)
    report["could_trace"] = daemon.can_trace
    [platform] = [json.loads(e.body) for e in spool.recorded if e.test_name == "platform"]
    report["platform_verdict"] = platform["test_keys"]["analysis"]["verdict"]
    report["fingerprints"] = [e["x_injection"].get("failure")
                              for e in platform["test_keys"]["x_endpoints"]
                              if "x_injection" in e]
    report["after_round"] = scapy_loaded()
    # The positive control: asking for raw packets for real does load scapy, when allowed.
    report["raw_capability"] = packet.raw_capability()
    report["after_raw_check"] = scapy_loaded()
    return report


def main() -> int:
    print(json.dumps(asyncio.run(round_of_sites(Path(sys.argv[1]), "--reset" in sys.argv))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
