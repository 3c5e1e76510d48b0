"""Rounds of the probe daemon in the lab: the connectivity ladder first, then the targets.

A round scenario runs ``python -m probe run --once`` in the namespace of its access link, with
the scenario's URL as the only target, the lab's collector as collector and control, and a
ladder whose foreign hosts are the world's resolvers. What the round did is read back as a
``Round``: the ladder's sentence and the count of measurements kept for later from the
daemon's log, and the verdicts of the site measurements from what the collector stored, asked
from inside the world namespace (the host has no route into the lab).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from probe.daemon.loop import NOTICE_VERSION
from tests.lab import plan
from tests.lab.model import Paths

PROBE_ID = "lab-probe"
# The same short step timeouts as the lab's one-URL checks; the ladder waits 1.5 s per rung.
TIMEOUTS = {"dns": "3s", "connect": "3s", "tls": "3s", "http": "4s", "control": "10s"}
LADDER_TIMEOUT = 1.5
ROUND_DONE = re.compile(r"round done: (?P<summary>.+); (?P<waiting>\d+) measurements waiting "
                        r"for upload")

# Run in the world namespace with the URL as argument: the collector's stored measurements of
# that URL, as JSON, through its own API on the loopback address it listens on there.
STORED_QUERY = f"""
import json, sys, urllib.parse, urllib.request
query = urllib.parse.urlencode({{"input": sys.argv[1], "test_name": "web_connectivity"}})
url = "http://{plan.COLLECTOR_BACKEND}/api/v1/measurements?" + query
with urllib.request.urlopen(url, timeout=5) as response:
    print(response.read().decode())
"""

# The same, with each stored measurement's uid and the control it names (endpoint, path).
PATHS_QUERY = f"""
import json, sys, urllib.parse, urllib.request
base = "http://{plan.COLLECTOR_BACKEND}/api/v1/"
query = urllib.parse.urlencode({{"input": sys.argv[1], "test_name": "web_connectivity"}})
with urllib.request.urlopen(base + "measurements?" + query, timeout=5) as response:
    rows = json.loads(response.read())["measurements"]
out = []
for row in rows:
    with urllib.request.urlopen(base + "measurement/" + row["uid"],
                                timeout=5) as response:
        keys = json.loads(response.read())["test_keys"]
    out.append({{"uid": row["uid"], "control": keys.get("x_control_endpoint"),
                 "path": keys.get("x_control_path")}})
print(json.dumps(out))
"""


def daemon_config(url: str, token: str, ca_file: str, control_url: str,
                  spool: str, collector_first: str | None = None,
                  paths: Paths | None = None, *, probe_id: str = PROBE_ID,
                  asn: str | None = None) -> dict[str, Any]:
    """The probe daemon's configuration for one round that measures ``url``; each round has
    its own spool file, so nothing one round kept is counted by another. With
    ``collector_first`` the collector has two endpoints: through that address first, then
    its own (the controls follow the same list). ``paths`` gives the endpoints, controls
    and proxy instead."""
    endpoints: list[dict[str, str | None]] = [
        {"name": "first", "url": control_url, "front": collector_first},
        {"name": "second", "url": control_url}] if collector_first else []
    extra: dict[str, Any] = {}
    if paths is not None:
        endpoints = [{"name": name, "url": f"https://{host}"} for name, host in paths.collector]
        if paths.controls:
            extra["controls"] = [{"name": name, "url": f"https://{host}"}
                                 for name, host in paths.controls]
    link: dict[str, Any] = {"url": control_url, "token": token, "ca_file": ca_file,
                            "endpoints": endpoints}
    if paths is not None and paths.proxy:
        link["proxy"] = f"socks5h://{plan.SOCKS_PROXY}:{plan.SOCKS_PORT}"
    return extra | {
        "identity": {"probe_id": probe_id, "country": "KG"} | ({"asn": asn} if asn else {}),
        "spool_path": spool,
        "collector": link,
        "ca_file": ca_file,
        "timeouts": TIMEOUTS,
        "targets": [{"url": url}],
        "ladder": {"foreign": [f"{plan.PUBLIC_RESOLVER}:443", f"{plan.AUTH_DNS}:443"],
                   "resolver_name": plan.CONTROL_NAME, "timeout": LADDER_TIMEOUT},
        # ``probe run`` measures only for an operator who agreed to the notice; the lab is
        # its own operator.
        "consent": {"accepted": True, "notice_version": NOTICE_VERSION},
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """JSON is YAML: the daemon reads the file as its usual YAML config."""
    path.write_text(json.dumps(config, indent=2))
    return path


def round_done(log: str) -> tuple[str, int] | None:
    """(ladder sentence, measurements waiting for upload) from the daemon's log, or None."""
    found = None
    for match in ROUND_DONE.finditer(log):
        found = (match["summary"], int(match["waiting"]))
    return found


def stored_verdicts(rows: Iterable[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    """(URL, verdict) of each stored measurement row, sorted."""
    return tuple(sorted((str(row["input"]), str(row["verdict"])) for row in rows))
