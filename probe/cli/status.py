"""``python -m probe status``: what the probe has been doing, read from its local file.

Answers the questions OONI users could not (ooni/probe#1963): did my results go out, how much
waits, when did the collector last answer, what did the probe see, how much data did it use.
It reads the spool file read-only, so it works while the daemon runs and while it is stopped,
and it prints no addresses and no token.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
import textwrap
from datetime import UTC, datetime
from typing import Any

from probe.cli.common import BAD_INPUT
from probe.config import probe_config, target_sync
from probe.config.probe_config import ProbeConfig
from probe.daemon import announce
from probe.daemon.clock_check import describe_offset
from probe.daemon.endpoints import configured
from probe.daemon.traffic import daily_bytes
from probe.daemon.windows import active, parse, parse_time
from probe.local import journal
from probe.local.localdb import open_readonly
from probe.local.spool import read_counters, read_depth


def gather(config: ProbeConfig, now: datetime) -> dict[str, Any]:
    """Everything ``status`` shows, as plain data (also the ``--json`` output)."""
    db = open_readonly(config.spool_path)
    try:
        return _gather(db, config, now)
    finally:
        db.close()


def _gather(db: sqlite3.Connection, config: ProbeConfig, now: datetime) -> dict[str, Any]:
    depth = read_depth(db)
    state = journal.read_state(db)
    used, measured, skipped = journal.read_usage(db, now.strftime("%Y-%m-%d"))
    quarantine = db.execute("SELECT count(*) FROM quarantine").fetchone()[0]
    windows = parse(json.loads(state.get(journal.EVENT_WINDOWS, "[]")),
                    config.identity.country)
    window = active(windows, now)
    recent = journal.read_recent(db)
    return {
        "probe_id": config.identity.probe_id,
        "country": config.identity.country,
        "asn": config.identity.asn,
        "spool": {"measurements": depth.measurements, "bytes": depth.bytes,
                  "oldest": depth.oldest, "cap_bytes": int(config.spool_max_mb * 1_000_000),
                  "quarantined_now": int(quarantine)},
        "counters": read_counters(db),
        "last_upload": state.get(journal.LAST_UPLOAD),
        "last_upload_attempt": state.get(journal.LAST_UPLOAD_ATTEMPT),
        "last_upload_error": state.get(journal.LAST_UPLOAD_ERROR),
        "last_heartbeat": state.get(journal.LAST_HEARTBEAT),
        "last_heartbeat_attempt": state.get(journal.LAST_HEARTBEAT_ATTEMPT),
        "last_heartbeat_error": state.get(journal.LAST_HEARTBEAT_ERROR),
        "clock": _clock(state),
        "controls": _controls(state),
        "collector": _collector(config, state),
        "started_at": state.get(journal.STARTED),
        "stopped_at": state.get(journal.STOPPED),
        "event_window": ({"name": window.name, "until": window.end.isoformat()}
                         if window else None),
        "today": {"day": now.strftime("%Y-%m-%d"), "bytes": used, "measurements": measured,
                  "skipped_for_budget": skipped,
                  "budget_bytes": daily_bytes(config.budget.daily_mb)},
        "target_lists": target_sync.describe(config),
        # How much of the list today's budget covered (probe.daemon.pacing spreads it over the day).
        "coverage": {"listed": len(config.targets), "measured_today": sum(
            1 for target in config.targets
            if any(v.start_time.startswith(now.strftime("%Y-%m-%d"))
                   for v in recent.get(target.url, ())))},
        "recent": {target: [{"start_time": v.start_time, "verdict": v.verdict,
                             "layer": v.layer, "mechanism": v.mechanism,
                             "summary": v.summary} for v in verdicts]
                   for target, verdicts in sorted(recent.items())},
    }


def _controls(state: dict[str, str]) -> dict[str, Any] | None:
    """Which control answered the last web measurement (probe.nettests.control_client), or None."""
    try:
        found = json.loads(state.get(journal.CONTROLS, "null"))
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _collector(config: ProbeConfig, state: dict[str, str]) -> dict[str, Any]:
    """The collector's endpoints the probe knows, configured then announced (with the
    announcement's serial and expiry), and the way it was reached last (names, never an
    address: ``probe.daemon.endpoints``)."""
    link = config.collector
    listed = [{"name": e.name, "source": "configured"}
              for e in configured(link.url, link.endpoints)]
    announcement: dict[str, Any] | None = None
    try:
        kept = announce.kept(state[journal.ANNOUNCED])
    except (KeyError, announce.AnnouncementError):
        kept = None
    if kept is not None:
        announcement = {"serial": kept.serial,
                        "expires": kept.expires.strftime("%Y-%m-%dT%H:%M:%SZ")}
        names = {e["name"] for e in listed}
        listed += [{"name": e.name, "source": "announced"} for e in kept.endpoints
                   if e.name not in names]
    try:
        last = json.loads(state.get(journal.COLLECTOR_PATH, "null"))
    except ValueError:
        last = None
    return {"endpoints": listed, "announcement": announcement,
            "last_path": last if isinstance(last, dict) else None}


def _collector_lines(collector: dict[str, Any], now: datetime) -> list[str]:
    words = [f"{e['name']} ({e['source']})" for e in collector["endpoints"]]
    lines = [f"{'collector':<14} endpoints in order: {', '.join(words)}"]
    announcement = collector["announcement"]
    if announcement is not None:
        expires = parse_time(announcement["expires"])
        state = "expired at" if expires is not None and expires <= now else "valid until"
        lines.append(f"{'':<14} announcement serial {announcement['serial']}, {state} "
                     f"{announcement['expires']}")
    last = collector["last_path"]
    if last is None:
        lines.append(f"{'':<14} not reached yet")
    else:
        detour = ", a fallback" if last.get("fallback") else ""
        lines.append(f"{'':<14} last reached through {last.get('endpoint')} "
                     f"({last.get('path') or 'direct'}{detour}) {_ago(last.get('at'), now)}")
    return lines


def _controls_line(controls: dict[str, Any] | None, now: datetime) -> str:
    if controls is None:
        return "not asked yet"
    since = _ago(controls.get("at"), now)
    if controls.get("blocked"):
        return (f"every control unreachable since {since}: verdicts are inconclusive until "
                "one answers (blocked by the network?)")
    if controls.get("endpoint") is None:
        return f"no control gave a view since {since}"
    return f"{controls['endpoint']} answers ({controls.get('path') or 'direct'}), since {since}"


def _clock(state: dict[str, str]) -> dict[str, Any]:
    offset = state.get(journal.CLOCK_OFFSET)
    try:
        seconds = float(offset) if offset is not None else None
    except ValueError:
        seconds = None
    return {"status": state.get(journal.CLOCK_STATUS, "unverified"), "offset_s": seconds,
            "checked_at": state.get(journal.CLOCK_CHECKED)}


def _clock_line(clock: dict[str, Any], now: datetime) -> str:
    offset, checked = clock["offset_s"], clock["checked_at"]
    if clock["status"] == "unverified" or offset is None:
        line = "unverified: not compared with the collector's clock since the daemon started"
        if offset is not None:
            line += f" (before: offset {describe_offset(offset)}, {_ago(checked, now)})"
        return line + "; measurements are marked clock_unverified"
    if clock["status"] == "ok":
        return (f"agrees with the collector's (offset {describe_offset(offset)}), checked "
                f"{_ago(checked, now)}")
    direction = "behind" if offset > 0 else "ahead of"
    return (f"OFF: {describe_offset(offset)[1:]} {direction} the collector's, checked "
            f"{_ago(checked, now)}; measurements keep their times and carry the offset")


def _ago(stamp: str | None, now: datetime) -> str:
    if not stamp:
        return "never"
    moment = parse_time(stamp)
    if moment is None:
        return stamp
    seconds = int((now - moment).total_seconds())
    if seconds < 0:
        return f"{stamp} UTC"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{stamp} UTC ({seconds // size} {unit} ago)"
    return f"{stamp} UTC ({seconds} s ago)"


def _megabytes(count: int | None) -> str:
    return "no cap" if count is None else f"{count / 1e6:.1f} MB"


def _verdict_word(entry: dict[str, Any]) -> str:
    word = str(entry["verdict"])
    details = "/".join(x for x in (entry["layer"], entry["mechanism"]) if x)
    return f"{word}({details})" if details else word


def _fit(lines: list[str], width: int | None) -> list[str]:
    """Lines of the header wrapped under their 14-column label; none wider than ``width``."""
    if width is None:
        return lines
    out = []
    for line in lines:
        if len(line) <= width:
            out.append(line)
            continue
        out += textwrap.wrap(line, width, subsequent_indent=" " * min(15, width // 3),
                             break_long_words=True, break_on_hyphens=False) or [""]
    return out


def render(report: dict[str, Any], now: datetime, width: int | None = None) -> str:
    """The human-readable status: a pure function of ``gather``'s output. Given the
    terminal's ``width`` no line is wider: header lines wrap under their label, the table's
    columns shrink (the fixed layout is 110 columns)."""
    spool, counters, today = report["spool"], report["counters"], report["today"]
    identity = f"{report['probe_id']} ({report['country']}, {report['asn'] or 'ASN not declared'})"
    lines = [
        f"{'probe':<14} {identity}",
        f"{'daemon':<14} started {_ago(report['started_at'], now)}"
        + (f", stopped {_ago(report['stopped_at'], now)}" if report["stopped_at"] else ""),
        f"{'spool':<14} {spool['measurements']} measurements waiting "
        f"({_megabytes(spool['bytes'])} of {_megabytes(spool['cap_bytes'])} cap)"
        + (f", oldest {spool['oldest']} UTC" if spool["oldest"] else ""),
        f"{'uploaded':<14} {counters['uploaded']} in total; last success "
        f"{_ago(report['last_upload'], now)}",
    ]
    if report["last_upload_error"]:
        lines.append(f"{'':<14} last attempt {_ago(report['last_upload_attempt'], now)} "
                     f"failed: {report['last_upload_error']}")
    lines.append(f"{'lost':<14} {counters['evicted']} evicted (spool full, oldest first), "
                 f"{counters['quarantined']} refused by the collector")
    lines.append(f"{'heartbeat':<14} last answered {_ago(report['last_heartbeat'], now)}")
    lines += _collector_lines(report["collector"], now)
    lines.append(f"{'clock':<14} {_clock_line(report['clock'], now)}")
    lines.append(f"{'control':<14} {_controls_line(report['controls'], now)}")
    if report["last_heartbeat_error"]:
        lines.append(f"{'':<14} last attempt {_ago(report['last_heartbeat_attempt'], now)} "
                     f"failed: {report['last_heartbeat_error']}")
    window = report["event_window"]
    lines.append(f"{'event window':<14} "
                 + (f"{window['name'] or 'unnamed'} until {window['until']}" if window
                    else "none active"))
    lines.append(f"{'data today':<14} {_megabytes(today['bytes'])} of "
                 f"{_megabytes(today['budget_bytes'])} budget, {today['measurements']} "
                 f"measurements, {today['skipped_for_budget']} skipped for the budget")
    coverage = report["coverage"]
    lines.append(f"{'list today':<14} {coverage['measured_today']} of {coverage['listed']} "
                 "targets measured (the priority sites first when the budget is short)")
    lists = report["target_lists"]
    lines.append(f"{'target lists':<14} " + (
        f"the collector's version {lists['version']} (fetched {lists['fetched_at']})"
        if lists["source"] == "collector" else "the config's own files"))
    lines = _fit(lines, width)
    lines.append("")
    # target, verdicts, time (19): 44 + 44 + 19 and two spaces, or shared out over the width.
    column = 44 if width is None else max(12, min(44, (width - 21) // 2))
    table = [f"{'target':<{column}} {'recent verdicts, newest first'[:column]:<{column}} "
             "last measured (UTC)"]
    for target, entries in report["recent"].items():
        words = " ".join(_verdict_word(e) for e in entries)
        table.append(f"{target[:column]:<{column}} {words[:column]:<{column}} "
                     f"{entries[0]['start_time']}")
        if entries[0]["summary"]:  # the ladder's sentence, a trace's hop
            table += _fit([f"{'':<{column}} {entries[0]['summary']}"], width)
    if not report["recent"]:
        table.append("(nothing measured yet)")
    if width is not None:
        table = [line[:width].rstrip() for line in table]
    return "\n".join(lines + table)


def show(config: ProbeConfig, as_json: bool, now: datetime | None = None,
         width: int | None = None) -> str:
    now = now or datetime.now(UTC)
    report = gather(config, now)
    return json.dumps(report, indent=2) if as_json else render(report, now, width)


def add_parser(sub: Any) -> None:
    """Register the ``status`` subcommand on the probe's subparsers."""
    status = sub.add_parser("status", help="spool, uploads, heartbeats, verdicts, data used")
    status.add_argument("--config", required=True)
    status.add_argument("--json", action="store_true", help="print the status as JSON")


def main(args: argparse.Namespace) -> int:
    """Print the status for parsed arguments; the exit status."""
    loaded = probe_config.load(args.config)
    try:
        # On a terminal, its width; piped, the full 110-column table.
        width = shutil.get_terminal_size().columns if sys.stdout.isatty() else None
        print(show(loaded, args.json, width=width))
    except FileNotFoundError:
        # `probe live` (make run) uploads directly and keeps no spool: say so, since
        # it is the first thing a newcomer runs before asking for a status.
        print(f"error: no spool file yet ({loaded.spool_path}): the probe has not run "
              "with this config (`probe run`; `probe live` keeps no spool)",
              file=sys.stderr)
        return BAD_INPUT
    return 0
