"""The monitor blocked from one network, end to end: real probe daemons on two access
networks, a real censor rule on one of them, real heartbeats through the collector's API, and
the collector's own detection naming the finding.

The censor resets connections to the collector's first address from home broadband (one
AS) only; the phone on mobile data (another AS) reaches it directly. Each probe runs two
rounds of its daemon: the first reaches the collector (the broadband one at its second
endpoint) and uploads, the second's heartbeat tells the way that worked (a restarted daemon
resumes from it). The collector then opens a ``monitor_blocked`` event for the broadband
network alone, as ``collector.detect.monitor_reach`` rules.
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.lab import plan, rounds
from tests.lab.lab import CONTROL_URL, REPO, Lab
from tests.lab.model import CENSOR_LAN, Iptables, Link, Paths, Round, Scenario, Site

pytestmark = pytest.mark.lab

FIRST = Site("collector-m1.kuzot-lab.net", "88.212.9.21", http="none", https="control")
SITE = Site("www.monitor-reach.kg", "88.212.9.22")
CUT_FROM_BROADBAND = Iptables("filter", "FORWARD", (
    "-i", CENSOR_LAN, "-p", "tcp", "-d", FIRST.ip, "--dport", "443", "--syn", "-j", "REJECT",
    "--reject-with", "tcp-reset"), "ipv4")
PATHS = Paths(collector=(("first", FIRST.name), ("second", plan.CONTROL_NAME)),
              reached=None, control=None)
PROBES: dict[str, tuple[Link, str]] = {"lab-kt": ("broadband", "AS9198"),
                                       "lab-beeline": ("mobile", "AS21299")}
# Run in the world namespace: the collector's monitor_blocked events and its stored
# heartbeats are read through its API and its database.
EVENTS_QUERY = f"""
import json, time, urllib.request
url = "http://{plan.COLLECTOR_BACKEND}/api/v1/events?kind=monitor_blocked"
for _ in range(120):
    with urllib.request.urlopen(url, timeout=5) as response:
        events = json.loads(response.read())["events"]
    if events:
        break
    time.sleep(0.25)
print(json.dumps(events))
"""


def run_round(lab: Lab, probe_id: str, token: str) -> str:
    """Two rounds of one probe's daemon on its network, on one spool; returns their logs."""
    link, asn = PROBES[probe_id]
    config = rounds.write_config(lab.workdir / f"{probe_id}.yaml", rounds.daemon_config(
        f"https://{SITE.name}/", token, lab.ca_file, CONTROL_URL,
        str(lab.workdir / f"spool-{probe_id}.sqlite"), paths=PATHS, probe_id=probe_id,
        asn=asn))
    logs = []
    for _round in range(2):
        done = subprocess.run(
            [*lab.topology.exec_prefix(lab.topology.subscriber(link)), sys.executable, "-m",
             "probe", "run", "--config", str(config), "--once"],
            cwd=REPO, capture_output=True, text=True, timeout=90, check=False)
        assert done.returncode == 0, done.stderr[-1500:]
        logs.append(done.stderr)
    return "\n".join(logs)


def test_the_collector_blocked_from_one_network_is_a_monitor_blocked_finding(
        lab_capable: None) -> None:
    scenario = Scenario("monitor_reach", "the collector's first address cut from broadband",
                        f"https://{SITE.name}/", (SITE, FIRST), (CUT_FROM_BROADBAND,),
                        Round("online", (), 0))
    with Lab([scenario], collector_yaml="detection: {interval: 1s}\n") as lab:
        tokens = {probe_id: lab.topology.in_ns(
            lab.topology.world, sys.executable, "-m", "collector", "token", "issue",
            "--probe-id", probe_id, "--config", lab.collector_config).stdout.strip()
            for probe_id in PROBES}
        lab.apply(scenario)
        try:
            with ThreadPoolExecutor(max_workers=2) as pool:
                list(pool.map(lambda p: run_round(lab, p, tokens[p]), PROBES))
        finally:
            lab.revert(scenario)
        found = lab.topology.in_ns(lab.topology.world, sys.executable, "-c", EVENTS_QUERY,
                                   timeout=60)
        events: list[dict[str, Any]] = json.loads(found.stdout)
        beats = lab.topology.in_ns(lab.topology.world, sys.executable, "-c", (
            "import json, sqlite3, sys\n"
            "db = sqlite3.connect(sys.argv[1])\n"
            "print(json.dumps([[p, json.loads(b)] for p, b in db.execute("
            "'SELECT probe_id, body FROM heartbeats ORDER BY rowid')]))"),
            str(lab.workdir / "kuzot.sqlite"))
        heartbeats: list[tuple[str, dict[str, Any]]] = json.loads(beats.stdout)
    # The second round's heartbeat of each probe names the way it reached the collector.
    last = {probe_id: body for probe_id, body in heartbeats}
    assert (last["lab-kt"]["collector_endpoint"], last["lab-kt"]["collector_fallback"]) == (
        "second", True)
    assert (last["lab-beeline"]["collector_endpoint"],
            last["lab-beeline"]["collector_fallback"]) == ("first", False)
    assert all(body["collector_path"] == "direct" for body in last.values())
    [event] = events
    assert (event["kind"], event["cc"], event["asns"], event["mechanism"]) == (
        "monitor_blocked", "KG", ["AS9198"], "collector_fallback"), event
    assert event["status"] == "open"
