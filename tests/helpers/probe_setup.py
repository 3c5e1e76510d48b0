"""Probe configs and daemons for tests: every rung, target and address on loopback.

The connectivity ladder would otherwise read the host's routing table and dial its real
gateway, and the address book would read the host's interfaces; here both read small files
written by the test, so nothing leaves 127.0.0.1 and the host's own addresses play no part.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from probe.config.probe_config import ProbeConfig
from probe.core.typed_config import build
from probe.daemon.clock import Clock
from probe.daemon.loop import NOTICE_VERSION, Daemon
from probe.daemon.uploader import Uploader
from probe.local.localdb import LocalDB
from probe.local.spool import Entry, Spool

FIB_HEADER = "Main:\n  +-- 0.0.0.0/0 3 0 5\n"


def write_interfaces(directory: Path, ipv4: tuple[str, ...] = (),
                     ipv6_hex: tuple[str, ...] = ()) -> tuple[str, str]:
    """A ``fib_trie`` and an ``if_inet6`` file naming the given addresses as the host's."""
    fib = directory / "fib_trie"
    lines = [FIB_HEADER]
    for address in ipv4:
        lines.append(f"     |-- {address}\n        /32 host LOCAL\n")
    fib.write_text("".join(lines))
    inet6 = directory / "if_inet6"
    inet6.write_text("".join(f"{h} 02 40 00 80     eth0\n" for h in ipv6_hex))
    return str(fib), str(inet6)


def loopback_config(tmp_path: Path, collector_url: str, token: str | None,
                    targets: list[dict[str, Any]], ladder_port: int,
                    ca_file: str | None = None, **sections: Any) -> ProbeConfig:
    """A probe config built through the real loader (so it is validated like a file)."""
    return build(ProbeConfig, loopback_data(tmp_path, collector_url, token, targets,
                                            ladder_port, ca_file, **sections))


def loopback_data(tmp_path: Path, collector_url: str, token: str | None,
                  targets: list[dict[str, Any]], ladder_port: int,
                  ca_file: str | None = None, **sections: Any) -> dict[str, Any]:
    """The same config as plain data, e.g. to write it to a YAML file."""
    route = tmp_path / "route"
    route.write_text("Iface\tDestination\tGateway\tFlags\n")
    data: dict[str, Any] = {
        "identity": {"probe_id": "test-probe", "country": "KG", "asn": "AS8449"},
        "collector": {"url": collector_url, "token": token, "upload_batch": 100},
        "ca_file": ca_file,
        "timeouts": {"dns": 1, "connect": 1, "tls": 1, "http": 2, "control": 3},
        "schedule": {"interval": "15m", "jitter": 0.2, "concurrency": 4},
        "spool_path": str(tmp_path / "spool.sqlite"),
        "targets": targets,
        "ladder": {"foreign": [f"127.0.0.1:{ladder_port}"], "resolver_name": "localhost",
                   "route_file": str(route), "arp_file": str(route), "timeout": 1.0},
        "consent": {"accepted": True, "notice_version": NOTICE_VERSION},
        # Inside the test's directory: the daemon reads (and renames) an older probe's file
        # there at start, never one in the working directory.
        "throttling": {"budget_file": str(tmp_path / "throttle-budget.json")},
    }
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


class RecordingSpool(Spool):
    """The real spool, also remembering every measurement handed to it (to prove later
    that each one reached the collector)."""

    def __init__(self, db: LocalDB, max_bytes: int) -> None:
        super().__init__(db, max_bytes)
        self.recorded: list[Entry] = []

    async def put(self, entries: Any, also: Any = None) -> int:
        entries = list(entries)
        evicted = await super().put(entries, also)
        self.recorded.extend(entries)
        return evicted


async def make_daemon(config: ProbeConfig, tmp_path: Path, *, clock: Clock | None = None,
                      interfaces: tuple[str, str] | None = None, seed: int = 7,
                      uploader: Uploader | None = None,
                      **kwargs: Any) -> tuple[Daemon, LocalDB, RecordingSpool]:
    db = await LocalDB.open(config.spool_path)
    spool = RecordingSpool(db, int(config.spool_max_mb * 1_000_000))
    uploader = uploader or Uploader(config.collector.url, config.collector.token, timeout=2.0)
    daemon = Daemon(config, db, uploader, clock=clock, rng=random.Random(seed), spool=spool,
                    interface_files=interfaces or write_interfaces(tmp_path), **kwargs)
    return daemon, db, spool
