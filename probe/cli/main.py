"""Command line of the probe.

``check URL [--control URL] [--resolver IP[:PORT]] [--doh URL] [--ca-file PEM] [--json]``
runs one web connectivity measurement; ``init`` onboards a volunteer (notice, consent,
config); ``run`` is the daemon; ``status`` tells what the daemon did; ``live`` is the
main job of the quickstart (collector + probe + a live terminal table); ``platform NAME``
checks one platform (Telegram, WhatsApp, ...); ``trace URL`` locates the censor of a URL;
``throttle URL`` measures a target against its co-hosted baseline and the SNI A/B test;
``analyze FILE...`` re-runs the analysis on recorded web connectivity measurements (OONI's or
Kuzot's) and prints a table (or JSON lines).
Exit codes: 0 whatever the verdict, 2 on bad input (and on missing consent; for ``analyze``,
when nothing could be analysed).

Each command is a module of this package with ``add_parser(subparsers)`` and
``main(args) -> exit status``; this module only builds the parser and dispatches.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from probe.cli import analyze, check, init, live, platform, run, status, throttle, trace
from probe.cli.check import parse_timeouts
from probe.cli.common import BAD_INPUT
from probe.cli.common import resolver_problem as _resolver_problem
from probe.core.typed_config import ConfigError

# The helpers the command line's tests read by these names.
__all__ = ["main", "parse_timeouts", "_resolver_problem"]

# In the order ``--help`` lists them.
COMMANDS: dict[str, ModuleType] = {
    "check": check, "platform": platform, "trace": trace, "analyze": analyze, "init": init,
    "run": run, "throttle": throttle, "status": status, "live": live,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m probe", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS.values():
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        status_code: int = COMMANDS[args.command].main(args)
        return status_code
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return BAD_INPUT
    except KeyboardInterrupt:
        return 130
