"""``python -m probe run --config FILE``: the probe daemon. Exit 2 without consent or when
another daemon holds the spool."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from probe.cli.common import BAD_INPUT


def add_parser(sub: Any) -> None:
    """Register the ``run`` subcommand on the probe's subparsers."""
    run = sub.add_parser("run", help="run the probe daemon")
    run.add_argument("--config", required=True)
    run.add_argument("--once", action="store_true", help="one round, upload, then exit")


def main(args: argparse.Namespace) -> int:
    """Run the daemon on parsed arguments; the exit status."""
    # The daemon's modules are loaded only by this command: every other command starts
    # without them.
    from probe.config import probe_config, target_sync
    from probe.daemon.loop import ConsentMissing, read_token, require_consent, run_daemon
    from probe.local.localdb import SpoolLocked

    try:
        # The collector's lists first (the last good copy stays if it does not answer);
        # the daemon then loads the config with them. Nothing is sent without consent.
        loaded = probe_config.load(args.config)
        require_consent(loaded)
        print(asyncio.run(target_sync.refresh(loaded, read_token(loaded, Path.cwd()))),
              file=sys.stderr)
        return asyncio.run(run_daemon(args.config, once=args.once))
    except (ConsentMissing, SpoolLocked) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return BAD_INPUT
