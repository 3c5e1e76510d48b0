"""Use the lab by hand (needs root): ``python -m tests.lab run|up|down|shell|list``.

  run [SCENARIO ...]   build a lab, run the scenarios (all by default), print the table
  up SCENARIO ...      build a lab with those scenarios' censor rules in place and leave it up
  shell SCENARIO       like up, then a shell in the client namespace; the lab goes at exit
  down [--all]         tear down labs left up by ``up`` (``--all``: also ones whose
                       state was lost, i.e. every kzlab-* namespace whose owner has exited)
  list                 the scenarios, one line each

In the scenario's namespace (home broadband or mobile), ``$KUZOT_PROBE`` holds the probe
command for the scenario: a one-URL check, or one round of the daemon.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.helpers.netns import owner_alive
from tests.lab.lab import Lab, format_table
from tests.lab.model import Round, Scenario
from tests.lab.scenarios import BY_NAME, SCENARIOS
from tests.lab.topology import PREFIX, Topology, lab_namespaces, run


def _chosen(names: list[str]) -> list[Scenario]:
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)} (see: list)")
    return [BY_NAME[n] for n in names]


def _up(names: list[str]) -> Lab:
    scenarios = _chosen(names)
    lab = Lab(scenarios)
    lab.up()
    for scenario in lab.scenarios:
        lab.apply(scenario)
    return lab


def _instructions(lab: Lab) -> str:
    lines = [f"lab {lab.topology.lab_id} is up (state: {lab.workdir / 'state.json'})",
             f"namespaces: {', '.join(lab.topology.namespaces)}"]
    for scenario in lab.scenarios:
        command = shlex.join(_command(lab, scenario))
        namespace = lab.topology.subscriber(scenario.link)
        lines.append(f"{scenario.name}: ip netns exec {namespace} {command}")
    return "\n".join(lines)


def _command(lab: Lab, scenario: Scenario) -> list[str]:
    if isinstance(scenario.expect, Round):
        return lab.daemon_command(scenario)
    return lab.probe_command(scenario)


def _our_process(pid: int) -> bool:
    """A pid from a state file still belongs to the lab (pids get reused)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"tests.lab." in command or b"collector serve" in command


def _down_state(state_file: Path) -> None:
    state = json.loads(state_file.read_text())
    for pid in state["pids"].values():
        if _our_process(pid):
            os.kill(pid, signal.SIGTERM)
    time.sleep(0.5)
    for pid in state["pids"].values():
        if _our_process(pid):
            os.kill(pid, signal.SIGKILL)
    Topology(state["lab_id"]).destroy()
    subprocess.run(["rm", "-rf", state["workdir"]], check=False)
    print(f"lab {state['lab_id']} is down")


def _down(all_labs: bool) -> int:
    for state_file in Path(tempfile.gettempdir()).glob("kuzot-lab-*/state.json"):
        _down_state(state_file)
    if all_labs:
        for namespace in lab_namespaces():
            if not owner_alive(namespace, PREFIX):
                pids = run("ip", "netns", "pids", namespace, check=False).stdout.split()
                for pid in pids:
                    if _our_process(int(pid)):
                        os.kill(int(pid), signal.SIGKILL)
                run("ip", "netns", "del", namespace, check=False)
                print(f"deleted stale namespace {namespace}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run_cmd = sub.add_parser("run")
    run_cmd.add_argument("scenarios", nargs="*")
    run_cmd.add_argument("--workers", type=int, default=4)
    up = sub.add_parser("up")
    up.add_argument("scenarios", nargs="+")
    shell = sub.add_parser("shell")
    shell.add_argument("scenario")
    down = sub.add_parser("down")
    down.add_argument("--all", action="store_true")
    sub.add_parser("list")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 and args.command != "list":
        print("the lab needs root (network namespaces, iptables, tc)", file=sys.stderr)
        return 2

    if args.command == "list":
        for scenario in SCENARIOS:
            print(f"{scenario.name:<32} {scenario.about}")
        return 0
    if args.command == "run":
        scenarios = _chosen(args.scenarios) if args.scenarios else list(SCENARIOS)
        started = time.monotonic()
        with Lab(scenarios) as lab:
            outcomes = lab.run(workers=args.workers)
        print(format_table(outcomes))
        failed = sum(not o.passed for o in outcomes)
        print(f"{len(outcomes) - failed}/{len(outcomes)} as expected in "
              f"{time.monotonic() - started:.1f}s")
        return 1 if failed else 0
    if args.command == "up":
        lab = _up(args.scenarios)
        print(_instructions(lab))
        print("tear down with: python -m tests.lab down")
        return 0
    if args.command == "shell":
        lab = _up([args.scenario])
        try:
            print(_instructions(lab))
            scenario = lab.scenarios[0]
            env = dict(os.environ, KUZOT_PROBE=shlex.join(_command(lab, scenario)),
                       PS1=f"[lab {args.scenario}] \\w# ")
            namespace = lab.topology.subscriber(scenario.link)
            subprocess.run([*lab.topology.exec_prefix(namespace), "bash", "--norc", "-i"],
                           env=env, check=False)
        finally:
            lab.down()
        return 0
    return _down(args.all)


if __name__ == "__main__":
    sys.exit(main())
