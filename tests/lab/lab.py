"""The lab as one object: build the network, start its services, run scenarios, tear down.

``Lab(scenarios)`` builds a topology (``tests.lab.topology``) able to host every given
scenario at once: each scenario's sites get their own addresses and names, the ISP resolver
learns every scenario's lies and the injector every scenario's matches. Scenario rules
(iptables, tc) are applied just before a scenario runs and removed after it, in the batches
that ``tests.lab.schedule`` plans: side by side where the rules cannot disturb each other,
apart where they touch every connection (``exclusive``).

The probe runs as a real process in the namespace of the scenario's access link (home
broadband or mobile): ``python -m probe check URL --json --control
https://control.kuzot-lab.net ...`` for a one-URL check, or one round of the daemon
(``tests.lab.rounds``); the control and the collector are the real collector in the world
namespace. Teardown (``down``) kills only the processes the lab started, by their ids, and
deletes its namespaces; it runs on every exit path of ``with Lab(...)``.
"""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trustme

from tests.lab import plan, rounds, schedule
from tests.lab.model import (
    CENSOR_LAN,
    Expect,
    Inject,
    Iptables,
    IspAnswer,
    Round,
    Scenario,
    Shape,
    Site,
)
from tests.lab.topology import LabError, Topology

REPO = Path(__file__).resolve().parents[2]
# Short timeouts keep a blackholed step to three seconds (instead of ten), still far above
# what any step takes in the lab even on a busy machine; the control answers from inside the
# world in well under a second.
PROBE_TIMEOUTS = ("dns=3s", "connect=3s", "tls=3s", "http=4s", "control=10s")
CONTROL_URL = f"https://{plan.CONTROL_NAME}"
WRONG_NAME = "www.somebody-else.kg"


@dataclass(slots=True)
class Outcome:
    """What the probe said for one scenario."""

    scenario: Scenario
    got: Expect | Round | None
    seconds: float
    error: str | None = None
    measurement: dict[str, Any] | None = None
    log: str = ""  # a daemon round's log, for the failure message
    # A round with ``Scenario.paths``: ``probe status``'s collector section and the stored
    # measurements' uids and controls (``Lab._paths``).
    paths: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and self.got == self.scenario.expect


@dataclass(slots=True)
class _Applied:
    iptables: list[Iptables] = field(default_factory=list)
    classes: list[int] = field(default_factory=list)


def describe(value: Expect | Round | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, Round):
        verdicts = ",".join(verdict for _url, verdict in value.measured) or "nothing"
        return f"{value.summary}; measured {verdicts}; {value.waiting} waiting"
    parts = [value.verdict, value.layer or "-", value.mechanism or "-"]
    return f"{'/'.join(parts)} ({value.blocking}, {value.accessible})"


def format_table(outcomes: Iterable[Outcome]) -> str:
    rows = [("scenario", "expected", "got", "s", "")]
    for o in outcomes:
        got = describe(o.got) if o.error is None else f"error: {o.error[:60]}"
        rows.append((o.scenario.name, describe(o.scenario.expect), got, f"{o.seconds:.1f}",
                     "ok" if o.passed else "FAIL"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _sites(scenarios: Sequence[Scenario]) -> dict[str, Site]:
    sites: dict[str, Site] = {}
    for scenario in scenarios:
        for site in scenario.sites:
            if sites.setdefault(site.name, site) != site:
                raise LabError(f"site {site.name} declared twice, differently")
    return sites


class Lab:
    """An emulated censoring network able to host ``scenarios``."""

    def __init__(self, scenarios: Sequence[Scenario], workdir: Path | None = None,
                 collector_yaml: str = "") -> None:
        """``collector_yaml``: extra top-level keys for the collector's config (for example
        the throttling tests' ``sni_ab`` endpoint)."""
        self.scenarios = list(scenarios)
        self.collector_yaml = collector_yaml
        self.topology = Topology.new()
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="kuzot-lab-"))
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.applied: dict[str, _Applied] = {}
        self._class_ids = itertools.count(10)
        self.ca_file = str(self.workdir / "lab-ca.pem")
        self.collector_config = str(self.workdir / "collector.yaml")
        self._token: str | None = None
        self._token_lock = threading.Lock()

    # ----- lifecycle

    def __enter__(self) -> Lab:
        self.up()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.down()

    def up(self) -> None:
        try:
            self.topology.build()
            sites = _sites(self.scenarios)
            self.topology.add_world_addresses(
                [a for s in sites.values() for a in (s.ip, s.ip6) if a]
                + [plan.AUTH_DNS, plan.PUBLIC_RESOLVER, plan.CONTROL_IP,
                   plan.AUTH_DNS6, plan.PUBLIC_RESOLVER6, plan.CONTROL_IP6, plan.SOCKS_PROXY])
            world, censor, injector = self._write_configs(sites)
            self._start("world", self.topology.world, "-m", "tests.lab.world", world)
            self._start("censor", self.topology.censor, "-m", "tests.lab.censor", censor)
            if injector:
                self._start("injector", self.topology.censor, "-m", "tests.lab.injector",
                            injector)
            self._start("collector", self.topology.world, "-m", "collector", "serve",
                        "--config", self.collector_config)
            self._wait_ready()
            self.save_state()
        except BaseException:
            self.down()
            raise

    def down(self) -> None:
        """Stop what the lab started and delete its namespaces; safe to call twice."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        self.processes.clear()
        self.topology.destroy()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def save_state(self) -> Path:
        """Where a later ``python -m tests.lab down`` finds what to stop."""
        path = self.workdir / "state.json"
        path.write_text(json.dumps({
            "lab_id": self.topology.lab_id, "workdir": str(self.workdir),
            "pids": {name: p.pid for name, p in self.processes.items()},
            "scenarios": [s.name for s in self.scenarios], "ca_file": self.ca_file,
        }, indent=2))
        return path

    # ----- configuration and services

    def _write_configs(self, sites: dict[str, Site]) -> tuple[str, str, str | None]:
        lab_ca = trustme.CA(organization_name=plan.LAB_CA)
        rogue_ca = trustme.CA(organization_name=plan.ROGUE_CA)
        lab_ca.cert_pem.write_to_path(self.ca_file)
        certs = self.workdir / "certs"
        certs.mkdir()
        now = datetime.now(UTC)
        world_sites = []
        for site in sites.values():
            if site.cert == "expired":
                leaf = lab_ca.issue_cert(site.name, not_before=now - timedelta(days=400),
                                         not_after=now - timedelta(days=30))
            elif site.cert == "wrong_name":
                leaf = lab_ca.issue_cert(WRONG_NAME)
            else:
                leaf = lab_ca.issue_cert(site.name)
            pem = certs / f"{site.name}.pem"
            leaf.private_key_and_cert_chain_pem.write_to_path(str(pem))
            world_sites.append({"name": site.name, "ip": site.ip, "ip6": site.ip6,
                                "http": site.http, "https": site.https,
                                "cert_file": str(pem), "key_file": str(pem)})
        control_pem = certs / "control.pem"
        lab_ca.issue_cert(plan.CONTROL_NAME).private_key_and_cert_chain_pem.write_to_path(
            str(control_pem))
        mitm_pem = certs / "mitm.pem"
        rogue_ca.issue_cert(*sites).private_key_and_cert_chain_pem.write_to_path(str(mitm_pem))

        zone: dict[str, dict[str, str | None]] = {plan.CONTROL_NAME: {
            "kind": "a", "ip": plan.CONTROL_IP, "ip6": plan.CONTROL_IP6}}
        for site in sites.values():
            if site.dns != "nxdomain":
                zone[site.name] = {"kind": site.dns, "ip": site.ip, "ip6": site.ip6}
        lies: dict[str, str] = {}
        injections: list[dict[str, str | None]] = []
        for scenario in self.scenarios:
            for action in scenario.censor:
                if isinstance(action, IspAnswer):
                    lies[action.name] = action.action
                elif isinstance(action, Inject):
                    injections.append({"kind": action.kind, "match": action.match,
                                       "answer": action.answer})

        world = self.workdir / "world.json"
        world.write_text(json.dumps({
            "sites": world_sites, "zone": zone,
            "control": {"cert_file": str(control_pem), "key_file": str(control_pem),
                        "backend": plan.COLLECTOR_BACKEND},
            # The proxy beyond the censor resolves the lab's names itself (socks5h).
            "proxy": {"ip": plan.SOCKS_PROXY, "port": plan.SOCKS_PORT,
                      "hosts": {plan.CONTROL_NAME: plan.CONTROL_IP,
                                **{s.name: s.ip for s in sites.values()}}},
            "ready_file": str(self.workdir / "world.ready"),
        }))
        censor = self.workdir / "censor.json"
        censor.write_text(json.dumps({
            "lies": lies, "sites": {s.name: s.ip for s in sites.values()},
            "mitm": {"cert_file": str(mitm_pem), "key_file": str(mitm_pem)},
            "ready_file": str(self.workdir / "censor.ready"),
        }))
        injector = None
        if injections:
            path = self.workdir / "injector.json"
            path.write_text(json.dumps({"interface": CENSOR_LAN, "injections": injections,
                                        "ready_file": str(self.workdir / "injector.ready")}))
            injector = str(path)
        Path(self.collector_config).write_text(
            f"listen: {plan.COLLECTOR_BACKEND}\n"
            f"database: {self.workdir / 'kuzot.sqlite'}\n"
            f"control: {{timeout: 5s, ca_file: {self.ca_file}}}\n{self.collector_yaml}")
        return str(world), str(censor), injector

    def _start(self, name: str, namespace: str, *args: str) -> None:
        log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - owned by the process
        self.processes[name] = subprocess.Popen(
            [*self.topology.exec_prefix(namespace), sys.executable, *args], cwd=REPO,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()

    def log_tail(self, name: str, lines: int = 20) -> str:
        try:
            text = (self.workdir / f"{name}.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _wait_ready(self, timeout: float = 30.0) -> None:
        pending = {n for n in self.processes if n != "collector"}
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for name in list(pending):
                if (self.workdir / f"{name}.ready").exists():
                    pending.discard(name)
                elif self.processes[name].poll() is not None:
                    raise LabError(f"lab service {name} exited:\n{self.log_tail(name)}")
            time.sleep(0.05)
        if pending:
            raise LabError(f"lab services not ready in {timeout}s: {sorted(pending)}")
        host, _, port = plan.COLLECTOR_BACKEND.rpartition(":")
        wait = ("import socket,time\nfor _ in range(300):\n try:\n"
                f"  socket.create_connection(({host!r}, {int(port)}), 1)"
                "\n  break\n except OSError: time.sleep(0.05)\nelse: raise SystemExit(1)")
        result = self.topology.in_ns(self.topology.world, sys.executable, "-c", wait,
                                     check=False)
        if result.returncode != 0:
            raise LabError(f"collector did not start:\n{self.log_tail('collector')}")

    # ----- scenarios

    def daemon_token(self) -> str:
        """The collector's token for the lab's probe daemon, issued on first use."""
        with self._token_lock:
            if self._token is None:
                issued = self.topology.in_ns(
                    self.topology.world, sys.executable, "-m", "collector", "token", "issue",
                    "--probe-id", rounds.PROBE_ID, "--config", self.collector_config)
                self._token = issued.stdout.strip()
            return self._token

    def apply(self, scenario: Scenario) -> None:
        """Install a scenario's iptables rules and tc classes in the censor."""
        applied = self.applied.setdefault(scenario.name, _Applied())
        for action in scenario.censor:
            if isinstance(action, Iptables):
                self._iptables("-A", action)
                applied.iptables.append(action)
            elif isinstance(action, Shape):
                # Downloads from the address leave the censor towards the client: shape there.
                class_id = next(self._class_ids)
                self.topology.in_ns(self.topology.censor, "tc", "class", "add", "dev",
                                    CENSOR_LAN, "parent", "1:", "classid", f"1:{class_id}",
                                    "htb", "rate", action.rate, "ceil", action.rate)
                self.topology.in_ns(self.topology.censor, "tc", "filter", "add", "dev",
                                    CENSOR_LAN, "parent", "1:", "protocol", "ip", "prio",
                                    str(class_id), "u32", "match", "ip", "src",
                                    f"{action.ip}/32", "flowid", f"1:{class_id}")
                applied.classes.append(class_id)

    def revert(self, scenario: Scenario) -> None:
        applied = self.applied.pop(scenario.name, None)
        if applied is None:
            return
        for rule in reversed(applied.iptables):
            self._iptables("-D", rule)
        for class_id in applied.classes:
            self.topology.in_ns(self.topology.censor, "tc", "filter", "del", "dev", CENSOR_LAN,
                                "parent", "1:", "prio", str(class_id), check=False)
            self.topology.in_ns(self.topology.censor, "tc", "class", "del", "dev", CENSOR_LAN,
                                "classid", f"1:{class_id}", check=False)

    def _iptables(self, verb: str, rule: Iptables) -> None:
        tools = {"ipv4": ("iptables",), "ipv6": ("ip6tables",),
                 "both": ("iptables", "ip6tables")}[rule.family]
        for tool in tools:
            self.topology.in_ns(self.topology.censor, tool, "-w", "-t", rule.table, verb,
                                rule.chain, *rule.spec)

    def probe_command(self, scenario: Scenario, url: str | None = None) -> list[str]:
        """The probe's command line for ``scenario``, to run inside the client namespace."""
        args = [sys.executable, "-m", "probe", "check", url or scenario.url, "--json",
                "--control", CONTROL_URL, "--ca-file", self.ca_file]
        for timeout in PROBE_TIMEOUTS:
            args += ["--timeout", timeout]
        if scenario.public_resolver:
            args += ["--resolver", plan.PUBLIC_RESOLVER]
        return args

    def probe(self, scenario: Scenario) -> Outcome:
        """Run the probe once on the scenario's access link and read what it reported."""
        if isinstance(scenario.expect, Round):
            return self.daemon_round(scenario)
        started = time.monotonic()
        namespace = self.topology.subscriber(scenario.link)
        result = subprocess.run(
            [*self.topology.exec_prefix(namespace), *self.probe_command(scenario)],
            cwd=REPO, capture_output=True, text=True, timeout=90, check=False)
        seconds = time.monotonic() - started
        if result.returncode != 0:
            return Outcome(scenario, None, seconds,
                           f"probe exit {result.returncode}: {result.stderr.strip()[-300:]}")
        try:
            measurement = json.loads(result.stdout)
            keys = measurement["test_keys"]
            analysis = keys["analysis"]
            got = Expect(analysis["verdict"], analysis["layer"], analysis["mechanism"],
                         keys["blocking"], keys["accessible"])
        except (ValueError, KeyError, TypeError) as exc:
            return Outcome(scenario, None, seconds, f"unreadable probe output: {exc}")
        return Outcome(scenario, got, seconds, measurement=measurement)

    def daemon_command(self, scenario: Scenario) -> list[str]:
        """One round of the probe daemon measuring ``scenario.url`` (writes its config)."""
        config = rounds.write_config(
            self.workdir / f"round-{scenario.name}.yaml",
            rounds.daemon_config(scenario.url, self.daemon_token(), self.ca_file, CONTROL_URL,
                                 str(self.workdir / f"spool-{scenario.name}.sqlite"),
                                 scenario.collector_first, scenario.paths))
        return [sys.executable, "-m", "probe", "run", "--config", str(config), "--once"]

    def daemon_round(self, scenario: Scenario) -> Outcome:
        """Run one daemon round on the scenario's access link; read its log and what the
        collector stored from it."""
        command = self.daemon_command(scenario)
        started = time.monotonic()
        result = subprocess.run(
            [*self.topology.exec_prefix(self.topology.subscriber(scenario.link)), *command],
            cwd=REPO, capture_output=True, text=True, timeout=90, check=False)
        seconds = time.monotonic() - started
        log = result.stdout + result.stderr
        done = rounds.round_done(log)
        if result.returncode != 0 or done is None:
            return Outcome(scenario, None, seconds,
                           f"probe run exit {result.returncode}: {log.strip()[-300:]}", log=log)
        stored = self.topology.in_ns(self.topology.world, sys.executable, "-c",
                                     rounds.STORED_QUERY, scenario.url, check=False)
        try:
            measured = rounds.stored_verdicts(json.loads(stored.stdout)["measurements"])
        except (ValueError, KeyError, TypeError) as exc:
            return Outcome(scenario, None, seconds, f"collector query failed: {exc} "
                           f"{stored.stderr.strip()[-200:]}", log=log)
        summary, waiting = done
        outcome = Outcome(scenario, Round(summary, measured, waiting), seconds, log=log)
        if scenario.paths is not None:
            outcome.paths = self._paths(scenario)
        return outcome

    def _paths(self, scenario: Scenario) -> dict[str, Any]:
        """Which ways the round reports: ``probe status --json`` in the probe's namespace (the
        collector's last way, the control that answered last) and, per measurement the
        collector stored for the URL, its uid and the control it names, read back from the
        collector in the world."""
        config = self.workdir / f"round-{scenario.name}.yaml"
        shown = self.topology.in_ns(
            self.topology.subscriber(scenario.link), sys.executable, "-m", "probe", "status",
            "--json", "--config", str(config), check=False)
        stored = self.topology.in_ns(self.topology.world, sys.executable, "-c",
                                     rounds.PATHS_QUERY, scenario.url, check=False)
        try:
            report = json.loads(shown.stdout)
            return {"status": report["collector"], "controls": report["controls"],
                    "stored": json.loads(stored.stdout)}
        except (ValueError, KeyError) as exc:
            return {"error": f"{exc}: {shown.stderr[-200:]} {stored.stderr[-200:]}"}

    def _together(self, scenarios: Sequence[Scenario], rules_of: Sequence[Scenario],
                  workers: int) -> list[Outcome]:
        """Apply the censor rules of ``rules_of``, probe ``scenarios`` side by side, then
        remove the rules."""
        applied: list[Scenario] = []
        try:
            for scenario in rules_of:
                self.apply(scenario)
                applied.append(scenario)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                return list(pool.map(self.probe, scenarios))
        finally:
            for scenario in applied:
                self.revert(scenario)

    def run(self, scenarios: Sequence[Scenario] | None = None, workers: int = 4) -> list[Outcome]:
        """Run ``scenarios`` (default: all of the lab's) in the batches of
        ``tests.lab.schedule.plan``. Results come back in the given order."""
        chosen = list(scenarios if scenarios is not None else self.scenarios)
        outcomes: dict[str, Outcome] = {}
        for batch in schedule.plan(chosen):
            for outcome in self._together(batch.probes, batch.rules, workers):
                outcomes[outcome.scenario.name] = outcome
        return [outcomes[s.name] for s in chosen]
