"""A sealed three-namespace network for the throttling scenarios, with real shaping and policing.

```
 [client: the probe] --veth-- [censor: router, tc, iptables] --veth-- [world: target site,
   10.66.0.2/24                 10.66.0.1 | 45.91.20.1/24             baseline site, collector]
```
The world uses a public-looking block (45.91.20.0/24) because a censor's throttle targets public
addresses; it exists only inside the lab, which has no veth to the host and no route out. The
client side is private, as a home network is. Namespace names carry a random suffix
(``tests.helpers.netns``); ``close`` kills the servers and deletes every namespace, and the
fixtures call it in ``finally``.

Censor techniques (detection notes 6.4; tc netem is not available on these kernels):
* ``shape_address``: ``tc htb`` with a ``u32`` filter on the address, both directions;
* ``shape_link``: the whole access link at a low rate (generalized slowdown);
* ``police_sni``: ``iptables -m string`` on the SNI in the ClientHello sets a CONNMARK, and
  ``hashlimit`` drops the marked connection's packets above a byte rate, as Russia's 2021
  Twitter throttle did.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trustme

from tests.helpers.netns import Netns, have_netns

REPO = Path(__file__).resolve().parents[3]
CLIENT_IP, ROUTER_CLIENT_IP = "10.66.0.2", "10.66.0.1"
ROUTER_WORLD_IP = "45.91.20.1"
TARGET_IP, BASELINE_IP, COLLECTOR_IP = "45.91.20.10", "45.91.20.11", "45.91.20.12"
TARGET_HOST, BASELINE_HOST = "www.azattyq-lab.kz", "i.pinimg-lab.com"
COLLECTOR_PORT, AB_PORT = 8080, 8443
ACCESS_RATE = "20mbit"  # the subscriber's line; every scenario has one, as a real probe does


def lab_capable() -> tuple[bool, str]:
    ok, reason = have_netns()
    if not ok:
        return ok, reason
    for tool in ("tc", "iptables", "ss"):
        if shutil.which(tool) is None:
            return False, f"needs {tool} (iproute2/iptables)"
    return True, ""


def _interface(net: Netns, ns: str, address: str) -> str:
    out = net.run(ns, "ip", "-o", "-4", "addr", "show").stdout
    for line in out.splitlines():
        match = re.match(r"\d+:\s+(\S+)\s+inet\s+(\S+)/", line)
        if match and match.group(2) == address:
            return match.group(1).split("@")[0]
    raise RuntimeError(f"no interface with {address} in {ns}")


def _check(result: subprocess.CompletedProcess[str]) -> None:
    if result.returncode != 0:
        raise RuntimeError(f"{result.args}: {result.stderr.strip()}")


class ThrottleLab:
    """Build with ``start()``; always ``close()``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.net = Netns()
        self.processes: list[subprocess.Popen[Any]] = []  # servers, then probes
        self.ca = trustme.CA()
        self.ca_file = str(workdir / "ca.pem")
        self.client = self.censor = self.world = ""
        self.to_client = self.to_world = ""
        self._tag = self.net.tag

    # -- topology -------------------------------------------------------------------------

    def start(self) -> None:
        self.client, self.censor, self.world = (self.net.add("cli"), self.net.add("cen"),
                                                self.net.add("wld"))
        self.net.link(self.client, f"{CLIENT_IP}/24", self.censor, f"{ROUTER_CLIENT_IP}/24")
        self.net.link(self.censor, f"{ROUTER_WORLD_IP}/24", self.world, f"{TARGET_IP}/24")
        self.to_client = _interface(self.net, self.censor, ROUTER_CLIENT_IP)
        self.to_world = _interface(self.net, self.censor, ROUTER_WORLD_IP)
        world_if = _interface(self.net, self.world, TARGET_IP)
        for address in (BASELINE_IP, COLLECTOR_IP):
            _check(self.net.run(self.world, "ip", "addr", "add", f"{address}/24", "dev",
                                world_if))
        _check(self.net.run(self.client, "ip", "route", "add", "default", "via",
                            ROUTER_CLIENT_IP))
        _check(self.net.run(self.world, "ip", "route", "add", "default", "via",
                            ROUTER_WORLD_IP))
        _check(self.net.run(self.censor, "sysctl", "-qw", "net.ipv4.ip_forward=1"))
        # Segmentation offload would hand the shaper 64 KiB super-packets: at 128 kbit/s that
        # is four seconds per "packet". Real links carry MTU-sized packets.
        for ns, dev in ((self.world, world_if), (self.censor, self.to_client),
                        (self.censor, self.to_world)):
            self.net.run(ns, "ip", "link", "set", "dev", dev, "gso_max_size", "1500")
        self.clear()
        self._start_servers()

    def _spawn(self, ns: str, *args: str) -> None:
        log = open(self.workdir / f"server-{len(self.processes)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, *args],
                                   cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONPATH": str(REPO)})
        log.close()
        self.processes.append(process)

    def _start_servers(self) -> None:
        for name, address in ((TARGET_HOST, TARGET_IP), (BASELINE_HOST, BASELINE_IP)):
            cert = self.ca.issue_cert(name)
            cert_path, key_path = self.workdir / f"{name}.pem", self.workdir / f"{name}.key"
            cert.cert_chain_pems[0].write_to_path(str(cert_path))
            cert.private_key_pem.write_to_path(str(key_path))
            self._spawn(self.world, "-m", "tests.probe.throttle.site", "--listen",
                        f"{address}:443", "--cert", str(cert_path), "--key", str(key_path))
        self.ca.cert_pem.write_to_path(self.ca_file)
        config = self.workdir / "collector.yaml"
        config.write_text(
            f"listen: {COLLECTOR_IP}:{COLLECTOR_PORT}\n"
            f"database: {self.workdir / 'kuzot.sqlite'}\n"
            f"sni_ab: {{listen: '{COLLECTOR_IP}:{AB_PORT}'}}\n")
        self._spawn(self.world, "-m", "collector", "serve", "--config", str(config))
        wanted = {f"{TARGET_IP}:443", f"{BASELINE_IP}:443", f"{COLLECTOR_IP}:{COLLECTOR_PORT}",
                  f"{COLLECTOR_IP}:{AB_PORT}"}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            listening = set(self.net.run(self.world, "ss", "-ltnH").stdout.split())
            if wanted <= listening:
                return
            if any(p.poll() is not None for p in self.processes):
                break
            time.sleep(0.2)
        logs = "\n".join(p.read_text(errors="replace")[-2000:]
                         for p in sorted(self.workdir.glob("server-*.log")))
        raise RuntimeError(f"lab servers did not start:\n{logs}")

    # -- the censor ------------------------------------------------------------------------

    def clear(self) -> None:
        """Back to an honest network: only the subscriber's line rate, no filters."""
        for dev in (self.to_client, self.to_world):
            self.net.run(self.censor, "tc", "qdisc", "del", "dev", dev, "root")
            _check(self.net.run(self.censor, "tc", "qdisc", "add", "dev", dev, "root",
                                "handle", "1:", "htb", "default", "10"))
            _check(self.net.run(self.censor, "tc", "class", "add", "dev", dev, "parent", "1:",
                                "classid", "1:10", "htb", "rate", ACCESS_RATE))
        for table in ("filter", "mangle"):
            self.net.run(self.censor, "iptables", "-t", table, "-F")

    def shape_address(self, address: str, rate: str) -> None:
        """``tc htb`` + ``u32``: traffic from and to ``address`` limited to ``rate``.

        The class keeps the kernel's default deep FIFO, as a shaper on a real line does: the
        flow settles on a flat rate. (With a queue of a few packets, TCP's retransmission
        timeouts at these rates cut the curve into bursts and stalls; fq_codel and sfq, which
        would avoid both, are not available on these kernels.)"""
        for dev, direction in ((self.to_client, "src"), (self.to_world, "dst")):
            _check(self.net.run(self.censor, "tc", "class", "add", "dev", dev, "parent", "1:",
                                "classid", "1:20", "htb", "rate", rate, "ceil", rate))
            _check(self.net.run(self.censor, "tc", "filter", "add", "dev", dev, "parent", "1:",
                                "protocol", "ip", "prio", "1", "u32", "match", "ip", direction,
                                f"{address}/32", "flowid", "1:20"))

    def shape_link(self, rate: str) -> None:
        """The whole access link at ``rate``: a generalized slowdown."""
        for dev in (self.to_client, self.to_world):
            _check(self.net.run(self.censor, "tc", "class", "change", "dev", dev, "parent",
                                "1:", "classid", "1:10", "htb", "rate", rate, "ceil", rate))

    def police_sni(self, name: str, rate: str, mark: str = "0x5") -> None:
        """SNI policer: mark the connection whose ClientHello names ``name``, then drop its
        packets, both ways, above ``rate`` (iptables hashlimit byte mode, e.g. ``16kb/s``)."""
        _check(self.net.run(self.censor, "iptables", "-A", "FORWARD", "-p", "tcp", "--dport",
                            "443:65535", "-m", "string", "--string", name, "--algo", "bm",
                            "-j", "CONNMARK", "--set-mark", mark))
        _check(self.net.run(self.censor, "iptables", "-A", "FORWARD", "-m", "connmark",
                            "--mark", mark, "-m", "hashlimit", "--hashlimit-above", rate,
                            "--hashlimit-burst", "16kb", "--hashlimit-mode",
                            "srcip,srcport,dstip,dstport",
                            "--hashlimit-name", f"kz{self._tag}", "-j", "DROP"))

    # -- the probe ---------------------------------------------------------------------------

    def probe_command(self, *extra: str) -> list[str]:
        """``python -m probe throttle`` in the client namespace, printing the JSON measurement."""
        return ["ip", "netns", "exec", self.client, sys.executable, "-m", "probe", "throttle",
                f"https://{TARGET_HOST}/", "--baseline", f"https://{BASELINE_HOST}/",
                "--sni-ab", f"http://{COLLECTOR_IP}:{COLLECTOR_PORT}",
                "--resolve", f"{TARGET_HOST}:{TARGET_IP}",
                "--resolve", f"{BASELINE_HOST}:{BASELINE_IP}",
                "--ca-file", self.ca_file, "--json", "--cc", "KZ", "--asn", "AS9198", *extra]

    def start_probe(self, *extra: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(self.probe_command(*extra), cwd=REPO, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.processes.append(process)
        return process

    def censor_counters(self) -> str:
        return self.net.run(self.censor, "iptables", "-vnL", "FORWARD").stdout + \
            self.net.run(self.censor, "tc", "-s", "class", "show", "dev", self.to_client).stdout

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.processes.clear()
        self.net.cleanup()

