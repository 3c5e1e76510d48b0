"""The public status page (``GET /``) and one page per event (``GET /events/{id}``).

For media partners who link to it during a protest: what is happening now, where, since when
and on what evidence; a table per country and per network; a seven-day timeline. Plain HTML
with one inline stylesheet: no JavaScript, no external assets, no ``style`` attributes,
readable on a phone (tables scroll sideways inside their box instead of widening the page).
The stylesheet is allowed by its hash in the Content-Security-Policy (``collector.api.security``),
which allows nothing else. Pure functions of their inputs, so the tests can check them on
tables.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from collector.events.kinds import BLOCK, MONITOR_BLOCKED, MONITOR_OUTAGE, SHUTDOWN, THROTTLING
from collector.notify.event import EventView, tier_rank

COUNTRIES = {"KG": "Kyrgyzstan", "KZ": "Kazakhstan", "ZZ": "every country"}
KIND_WORDS = {SHUTDOWN: "Internet shutdown", BLOCK: "Blocking", THROTTLING: "Throttling",
              MONITOR_BLOCKED: "Monitor blocked", MONITOR_OUTAGE: "Monitor outage"}
KIND_LETTER = {SHUTDOWN: "S", BLOCK: "B", THROTTLING: "T", MONITOR_BLOCKED: "M"}
# Severity for "the worst thing happening": a shutdown hides everything behind it; the
# monitor blocked is the least for the people of the network (their sites may be fine).
KIND_RANK = {SHUTDOWN: 3, BLOCK: 2, THROTTLING: 1, MONITOR_BLOCKED: 0}
VERDICTS = ("ok", "blocked", "throttled", "down", "inconclusive")
MAX_EVIDENCE = 12

CSS = """
*{box-sizing:border-box}
body{font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1b1b;
background:#fafafa}
header,main,footer{max-width:60rem;margin:0 auto;padding:.75rem 1rem}
header{background:#14213d;color:#fff;max-width:none}
header h1{font-size:1.25rem;margin:.2rem 0}
header p{margin:.2rem 0;color:#dde}
h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
.card{background:#fff;border:1px solid #ddd;border-left:.4rem solid #888;border-radius:.3rem;
padding:.6rem .8rem;margin:.6rem 0}
.card h3{font-size:1rem;margin:0 0 .3rem}
.card p{margin:.2rem 0}
.shutdown{border-left-color:#b00020}.block{border-left-color:#d35400}
.throttling{border-left-color:#b7950b}.monitor{border-left-color:#555}
.tier{display:inline-block;font-size:.8rem;padding:0 .4rem;border-radius:.6rem;background:#eee}
.tier-confirmed{background:#b00020;color:#fff}.tier-likely{background:#d35400;color:#fff}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;max-width:100%}
table{border-collapse:collapse;background:#fff;font-size:.92rem;min-width:100%}
th,td{padding:.3rem .5rem;text-align:left;border-bottom:1px solid #e4e4e4;white-space:nowrap}
td.wrap{white-space:normal;word-break:break-all}
.ok{color:#1e7e34}.bad{color:#b00020;font-weight:600}.warn{color:#9a6700;font-weight:600}
.day{text-align:center;min-width:2.2rem}
.c-shutdown{background:#b00020;color:#fff}.c-block{background:#f0a04b}
.c-throttling{background:#f4d03f}.c-none{color:#999}
dl{margin:.3rem 0;display:grid;grid-template-columns:max-content 1fr;gap:.1rem .6rem}
dt{font-weight:600}dd{margin:0;word-break:break-word}
@media (max-width:30rem){dl{display:block}dd{margin:0 0 .3rem .8rem}}
details{margin:.8rem 0}summary{cursor:pointer;font-weight:600}
footer{color:#555;font-size:.85rem}
a{color:#0b57d0}
"""
# The CSP source expression for the <style> element holding exactly CSS.
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _time(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")


def _duration(start: datetime, end: datetime) -> str:
    minutes = max(0, int((end - start).total_seconds() // 60))
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins} min" if hours else f"{mins} min"


def country(cc: str) -> str:
    return COUNTRIES.get(cc, cc)


def _page(title: str, body: str, now: datetime) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        "<header><h1>Kuzot: Internet shutdowns, blocking and throttling</h1>"
        f"<p>Kyrgyzstan and Kazakhstan. Updated {_e(_time(now))}.</p></header>"
        f"<main>{body}</main>"
        '<footer><p>Data: <a href="/api/v1/events">events (JSON)</a> · '
        '<a href="/api/v1/measurements">measurements (JSON)</a> · '
        '<a href="/metrics">metrics</a>. Times are UTC. Tiers: suspected (one probe), '
        "likely (several independent probes), confirmed (a fingerprint or several networks)."
        "</p></footer></body></html>")


def _evidence(evidence: Mapping[str, Any], limit: int | None) -> str:
    items = sorted(evidence.items())
    if limit is not None:
        items = items[:limit]
    if not items:
        return ""
    rows = "".join(
        f"<dt>{_e(k)}</dt><dd>{_e(v if isinstance(v, str) else json.dumps(v, ensure_ascii=False))}"
        "</dd>" for k, v in items)
    return f"<dl>{rows}</dl>"


def _event_card(event: EventView, now: datetime, link: bool = True) -> str:
    title = f"{KIND_WORDS[event.kind]} in {country(event.cc)}"
    if event.asns:
        title += f" ({', '.join(event.asns)})"
    if event.status == "open":
        when = f"Since {_time(event.start)}, for {_duration(event.start, now)}."
    else:
        end = event.end or event.updated_at
        when = (f"From {_time(event.start)} to {_time(end)} "
                f"({_duration(event.start, end)}).")
    targets = ", ".join(event.targets) if event.targets else "all sites and services"
    parts = [
        f'<article class="card {event.kind}">',
        f'<h3>{_e(title)} <span class="tier tier-{event.tier}">{_e(event.tier)}</span></h3>',
        f"<p>{_e(when)}</p>",
        f'<p class="wrap">Affected: {_e(targets)}</p>',
    ]
    facts = []
    if event.mechanism:
        facts.append(f"mechanism: {event.mechanism}")
    if event.probes:
        facts.append(f"seen by {event.probes} probe{'s' if event.probes != 1 else ''}")
    if facts:
        parts.append(f"<p>{_e('; '.join(facts).capitalize())}.</p>")
    parts.append(_evidence(event.evidence, MAX_EVIDENCE if link else None))
    if link:
        parts.append(f'<p><a href="/events/{_e(event.id)}">Details and evidence</a></p>')
    parts.append("</article>")
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class NetworkRow:
    cc: str
    asn: str
    counts: dict[str, int]
    last: str
    worst: EventView | None


def _worst(events: Sequence[EventView]) -> EventView | None:
    if not events:
        return None
    return max(events, key=lambda e: (KIND_RANK[e.kind], tier_rank(e.tier)))


def network_rows(latest: Sequence[Mapping[str, Any]],
                 open_events: Sequence[EventView]) -> list[NetworkRow]:
    """One row per (country, ASN) measured or under an open event, with verdict counts."""
    counts: dict[tuple[str, str], dict[str, int]] = {}
    last: dict[tuple[str, str], str] = {}
    for row in latest:
        key = (str(row.get("probe_cc") or ""), str(row.get("probe_asn") or ""))
        verdict = str(row.get("verdict") or "inconclusive")
        bucket = counts.setdefault(key, dict.fromkeys(VERDICTS, 0))
        bucket[verdict if verdict in bucket else "inconclusive"] += 1
        last[key] = max(last.get(key, ""), str(row.get("start_time") or ""))
    for event in open_events:
        for asn in event.asns:
            counts.setdefault((event.cc, asn), dict.fromkeys(VERDICTS, 0))
    rows = []
    for (cc, asn), bucket in sorted(counts.items()):
        touching = [e for e in open_events
                    if e.cc == cc and (not e.asns or asn in e.asns)]
        rows.append(NetworkRow(cc, asn, bucket, last.get((cc, asn), ""), _worst(touching)))
    return rows


def _status_cell(worst: EventView | None) -> str:
    if worst is None:
        return '<td class="ok">No open event</td>'
    css = "bad" if worst.kind != THROTTLING else "warn"
    return f'<td class="{css}">{_e(KIND_WORDS[worst.kind])} ({_e(worst.tier)})</td>'


def _country_table(rows: Sequence[NetworkRow], open_events: Sequence[EventView]) -> str:
    countries = sorted({r.cc for r in rows} | {e.cc for e in open_events})
    if not countries:
        return "<p>No measurements yet.</p>"
    lines = []
    for cc in countries:
        mine = [r for r in rows if r.cc == cc]
        total = {v: sum(r.counts[v] for r in mine) for v in VERDICTS}
        worst = _worst([e for e in open_events if e.cc == cc])
        lines.append(
            f"<tr><td>{_e(country(cc))}</td>{_status_cell(worst)}<td>{len(mine)}</td>"
            f"<td>{total['ok']}</td><td>{total['blocked']}</td><td>{total['throttled']}</td>"
            "</tr>")
    return ('<div class="scroll"><table><thead><tr><th>Country</th><th>Status</th>'
            "<th>Networks</th><th>Reachable</th><th>Blocked</th><th>Throttled</th></tr>"
            f"</thead><tbody>{''.join(lines)}</tbody></table></div>")


def _network_table(rows: Sequence[NetworkRow]) -> str:
    if not rows:
        return "<p>No networks measured yet.</p>"
    lines = "".join(
        f"<tr><td>{_e(country(r.cc))}</td><td>{_e(r.asn)}</td>{_status_cell(r.worst)}"
        + "".join(f"<td>{r.counts[v]}</td>" for v in VERDICTS)
        + f"<td>{_e(r.last)}</td></tr>" for r in rows)
    head = "".join(f"<th>{_e(v.capitalize())}</th>" for v in VERDICTS)
    return ('<div class="scroll"><table><thead><tr><th>Country</th><th>Network</th>'
            f"<th>Status</th>{head}<th>Last measured (UTC)</th></tr></thead>"
            f"<tbody>{lines}</tbody></table></div>")


def timeline(events: Sequence[EventView], now: datetime,
             days: int = 7) -> list[tuple[str, list[EventView | None]]]:
    """Per country and per network with events: the worst event touching each of ``days``
    UTC days, oldest first."""
    first = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0,
                                                     microsecond=0)
    keys = sorted({e.cc for e in events}) + sorted(
        {f"{e.cc} {asn}" for e in events for asn in e.asns})
    out = []
    for key in keys:
        cc, _, asn = key.partition(" ")
        cells: list[EventView | None] = []
        for index in range(days):
            start = first + timedelta(days=index)
            end = start + timedelta(days=1)
            touching = [e for e in events
                        if e.cc == cc and (not asn or asn in e.asns or not e.asns)
                        and e.start < end and (e.end or now) >= start]
            cells.append(_worst(touching))
        out.append((key, cells))
    return out


def _timeline_table(events: Sequence[EventView], now: datetime) -> str:
    rows = timeline(events, now)
    if not rows:
        return "<p>No events in the last seven days.</p>"
    first = (now - timedelta(days=6)).date()
    head = "".join(f'<th class="day">{(first + timedelta(days=i)).strftime("%d.%m")}</th>'
                   for i in range(7))
    lines = []
    for key, cells in rows:
        cc, _, asn = key.partition(" ")
        label = country(cc) + (f" {asn}" if asn else "")
        tds = []
        for cell in cells:
            if cell is None:
                tds.append('<td class="day c-none" title="no event">·</td>')
            else:
                what = f"{KIND_WORDS[cell.kind]} ({cell.tier})"
                tds.append(f'<td class="day c-{cell.kind}" title="{_e(what)}">'
                           f"{KIND_LETTER[cell.kind]}</td>")
        lines.append(f"<tr><td>{_e(label)}</td>{''.join(tds)}</tr>")
    legend = ("<p>S: Internet shutdown · B: blocking · T: throttling · "
              "·: no event. Each day shows the most severe event.</p>")
    return (f'<div class="scroll"><table><thead><tr><th>Where</th>{head}</tr></thead>'
            f"<tbody>{''.join(lines)}</tbody></table></div>{legend}")


def _targets_table(latest: Sequence[Mapping[str, Any]]) -> str:
    if not latest:
        return "<p>No measurements yet.</p>"
    lines = []
    for row in latest:
        verdict = str(row.get("verdict") or "")
        css = {"ok": "ok", "blocked": "bad", "throttled": "warn"}.get(verdict, "")
        lines.append(
            f'<tr><td class="wrap">{_e(row.get("input"))}</td><td>{_e(row.get("probe_cc"))}</td>'
            f'<td>{_e(row.get("probe_asn"))}</td><td class="{css}">{_e(verdict)}</td>'
            f'<td>{_e(row.get("layer"))}</td><td>{_e(row.get("mechanism"))}</td>'
            f'<td>{_e(row.get("start_time"))}</td></tr>')
    return ('<div class="scroll"><table><thead><tr><th>Target</th><th>Country</th>'
            "<th>Network</th><th>Verdict</th><th>Layer</th><th>Mechanism</th>"
            f"<th>Measured (UTC)</th></tr></thead><tbody>{''.join(lines)}</tbody></table></div>")


def _outage_card(event: EventView, now: datetime) -> str:
    """One outage of the monitor itself: when, why, and that it is not an event."""
    end = event.end
    when = (f"Since {_time(event.start)}, for {_duration(event.start, now)}." if end is None
            else f"From {_time(event.start)} to {_time(end)} ({_duration(event.start, end)}).")
    cause = {"collector_down": "The collector was down.",
             "control_unreachable": "The control answered no probe."}.get(
                 event.mechanism or "", "The monitor could not observe.")
    return (f'<article class="card monitor"><h3>Monitor outage</h3><p>{_e(when)} {_e(cause)} '
            "Not an Internet shutdown: failures measured meanwhile are not evidence.</p>"
            f'<p><a href="/events/{_e(event.id)}">Details</a></p></article>')


def status_page(events: Sequence[EventView], latest: Sequence[Mapping[str, Any]],
                now: datetime) -> str:
    """The front page; ``events`` are those open or ended within the last week.

    The monitor's own outages are not events about the Internet: they get their own section,
    so readers know when Kuzot could not observe and why there is a gap."""
    outages = [e for e in events if e.kind == MONITOR_OUTAGE]
    events = [e for e in events if e.kind != MONITOR_OUTAGE]
    open_events = [e for e in events if e.status == "open"]
    closed = [e for e in events if e.status == "closed"]
    rows = network_rows(latest, open_events)
    if open_events:
        ordered = sorted(open_events, key=lambda e: (-KIND_RANK[e.kind], -tier_rank(e.tier),
                                                     e.start))
        now_html = "".join(_event_card(e, now) for e in ordered)
        summary = f"{len(open_events)} open event{'s' if len(open_events) != 1 else ''}."
    else:
        now_html = "<p>No open events. Probes keep measuring.</p>"
        summary = "No open events."
    body = [
        f'<h2 id="now">Now: {_e(summary)}</h2>', now_html,
        '<h2 id="countries">By country</h2>', _country_table(rows, open_events),
        '<h2 id="networks">By network</h2>', _network_table(rows),
        '<h2 id="timeline">Last seven days</h2>', _timeline_table(events, now),
    ]
    if closed:
        body += ['<h2 id="recent">Ended in the last seven days</h2>',
                 "".join(_event_card(e, now) for e in closed)]
    if outages:
        body += ['<h2 id="monitor">When Kuzot could not observe</h2>',
                 "".join(_outage_card(e, now) for e in outages)]
    body += ["<details><summary>Latest result per target and network</summary>",
             _targets_table(latest), "</details>"]
    return _page("Kuzot status", "".join(body), now)


def event_page(event: EventView, now: datetime) -> str:
    """Everything known about one event, with the full evidence: the link in every alert."""
    facts = {"id": event.id, "kind": event.kind, "tier": event.tier, "status": event.status,
             "start": _time(event.start), "end": _time(event.end) or "open",
             "updated": _time(event.updated_at), "country": country(event.cc),
             "networks": ", ".join(event.asns) or "all", "probes": str(event.probes)}
    body = (_event_card(event, now, link=False)
            + '<h2>Facts</h2><dl>'
            + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts.items())
            + "</dl>"
            + (f"<h2>Targets</h2><ul>{''.join(f'<li>{_e(t)}</li>' for t in event.targets)}</ul>"
               if event.targets else "")
            + '<p><a href="/">All events</a> · <a href="/api/v1/events">JSON</a></p>')
    return _page(f"Kuzot: {KIND_WORDS[event.kind]} in {country(event.cc)}", body, now)
