"""The public status page (``GET /``) and one page per event (``GET /events/{id}``).

For media partners who link to it during a protest: what is happening now, where, since when,
how sure, and on what evidence, in plain sentences (``collector.events.sentences``) they can
quote; every country of the deployment (with "no probes here" where there are none); an
hour-by-hour timeline per country and network as inline SVG; links to subscribe (Atom) and to
the measurements behind each event. English, Russian, Kyrgyz and Kazakh
(``collector.events.i18n``).

Rendered from jinja2 templates with autoescaping, so every string from the outside world (a
network name, a domain, an evidence value) is escaped. Plain HTML with one inline stylesheet:
no JavaScript, no external assets, no ``style`` attributes. The page refreshes itself (a meta
refresh, no script). Tables turn into labelled blocks on a phone instead of being cut. The
stylesheet is allowed by its hash in the Content-Security-Policy (``collector.api.security``),
which allows nothing else. Pure functions of their inputs, so the tests can check them on tables.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any

from collector.events import charts
from collector.events.i18n import (
    LANGUAGE_NAMES,
    LANGUAGES,
    Language,
    plural,
    text,
)
from collector.events.kinds import MONITOR_OUTAGE
from collector.events.names import NetworkNames
from collector.events.sentences import country_name, describe, duration, site
from collector.events.templating import environment
from collector.notify.event import EventView, tier_rank

DEFAULT_COUNTRIES = ("KG", "KZ")
KIND_RANK = charts.KIND_RANK
VERDICTS = ("ok", "blocked", "throttled", "down", "inconclusive")
REFRESH_SECONDS = 300

CSS = """
*{box-sizing:border-box}
body{font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1b1b;
background:#fafafa}
header,main,footer{max-width:62rem;margin:0 auto;padding:.75rem 1rem}
header{background:#14213d;color:#fff;max-width:none}
header h1{font-size:1.25rem;margin:.2rem 0}
header p{margin:.2rem 0;color:#e8e8f4}
header a{color:#fff}
nav.lang{font-size:.9rem}nav.lang a,nav.lang strong{margin-right:.6rem}
h2{font-size:1.15rem;margin:1.4rem 0 .5rem}
h3{font-size:1rem;margin:0 0 .3rem}
.card h2,.card h3{font-size:1.05rem;margin:0 0 .3rem}
.card{background:#fff;border:1px solid #ddd;border-left:.4rem solid #767676;border-radius:.3rem;
padding:.6rem .8rem;margin:.6rem 0}
.card p{margin:.25rem 0}
.shutdown{border-left-color:#b00020}.block{border-left-color:#c25e00}
.throttling{border-left-color:#9a7b00}.monitor_outage{border-left-color:#555}
.tier{display:inline-block;font-size:.85rem;padding:0 .45rem;border-radius:.6rem;
background:#e8e8e8;color:#1b1b1b}
.tier-confirmed{background:#b00020;color:#fff}.tier-likely{background:#a84300;color:#fff}
dl.facts{margin:.3rem 0}dl.facts dt{font-weight:700;margin-top:.3rem}
dl.facts dd{margin:0 0 .2rem 0;overflow-wrap:anywhere}
table{border-collapse:collapse;background:#fff;font-size:.95rem;width:100%}
th,td{padding:.35rem .5rem;text-align:left;border-bottom:1px solid #e0e0e0;vertical-align:top;
overflow-wrap:break-word}
td.long{word-break:break-all;min-width:8rem}
th{background:#f0f0f0;overflow-wrap:anywhere}
@media (min-width:48rem){th{overflow-wrap:normal}}
.ok{color:#176b2c}.bad{color:#a3001b;font-weight:700}.warn{color:#7a5a00;font-weight:700}
.none{color:#555}
svg.timeline{width:100%;height:auto;background:#fff;border:1px solid #ddd}
details{margin:.8rem 0}summary{cursor:pointer;font-weight:700}
footer{color:#444;font-size:.9rem}
a{color:#0b57d0}
@media (max-width:40rem){
table.stack thead{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
table.stack,table.stack tbody,table.stack tr,table.stack td{display:block;width:100%}
table.stack tr{border:1px solid #ddd;border-radius:.3rem;margin:0 0 .5rem;padding:.2rem .4rem}
table.stack td{border:0;padding:.1rem 0}
table.stack td::before{content:attr(data-label) ": ";font-weight:700}
}
"""
# The CSP source expression for the <style> element holding exactly CSS.
STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()


@dataclass(frozen=True, slots=True)
class PageSettings:
    """What the pages need beyond events: language, names, categories, countries, base URL."""

    language: Language = "en"
    names: NetworkNames = field(default_factory=NetworkNames)
    categories: Mapping[str, str] = field(default_factory=dict)
    countries: tuple[str, ...] = DEFAULT_COUNTRIES
    # The page's own path and query without lang=, for the language links.
    path: str = "/"


@dataclass(frozen=True, slots=True)
class Sample:
    """One measurement behind an event, as the event page lists it."""

    uid: str
    time: str
    network: str
    site: str
    verdict: str
    control: str  # "ok", "failed" or "none"


@dataclass(frozen=True, slots=True)
class NetworkRow:
    cc: str
    asn: str
    counts: dict[str, int]
    last: str
    worst: EventView | None


def _worst(events: Sequence[EventView]) -> EventView | None:
    return charts.worst(events)


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


def _lang_links(settings: PageSettings) -> list[dict[str, Any]]:
    joiner = "&" if "?" in settings.path else "?"
    return [{"code": code, "name": LANGUAGE_NAMES[code], "current": code == settings.language,
             "href": f"{settings.path}{joiner}lang={code}"} for code in LANGUAGES]


def _common(settings: PageSettings, now: datetime, title: str) -> dict[str, Any]:
    language = settings.language
    return {
        "lang": language, "t": partial(text, language), "plural": partial(plural, language),
        "css": CSS, "title": title, "refresh": REFRESH_SECONDS,
        "updated": now.strftime("%Y-%m-%d %H:%M"),
        "country_names": ", ".join(country_name(language, cc) for cc in settings.countries),
        "countries": [{"cc": cc, "name": country_name(language, cc)}
                      for cc in settings.countries],
        "languages": _lang_links(settings),
        "lang_query": "" if language == "en" else f"?lang={language}",
    }


def _card(event: EventView, settings: PageSettings, now: datetime) -> dict[str, Any]:
    words = describe(event, settings.language, settings.names, settings.categories, now)
    return {"event": event, "text": words, "lines": words.lines(settings.language)}


def _status_word(worst: EventView | None, language: Language) -> tuple[str, str]:
    if worst is None:
        return "ok", text(language, "status.none")
    css = "warn" if worst.kind == "throttling" else "bad"
    return css, (f"{text(language, f'kind.{worst.kind}')} "
                 f"({text(language, f'tier.{worst.tier}')})")


def _outage(event: EventView, settings: PageSettings, now: datetime) -> dict[str, Any]:
    language = settings.language
    cause = {"collector_down": "outage.collector_down",
             "control_unreachable": "outage.control_unreachable"}.get(
                 event.mechanism or "", "outage.other")
    words = describe(event, language, settings.names, settings.categories, now)
    return {"event": event, "when": words.since, "cause": text(language, cause)}


def status_page(events: Sequence[EventView], latest: Sequence[Mapping[str, Any]],
                now: datetime, settings: PageSettings | None = None,
                outside: Mapping[tuple[str, str], Sequence[float | None]] | None = None) -> str:
    """The front page; ``events`` are those open or ended within the last week; ``outside``
    the outside-in signal per (country, network): 168 hourly shares of blocks up, charted on
    the same hour grid below the events' timeline.

    The monitor's own outages are not events about the Internet: they get their own section,
    so readers know when Kuzot could not observe and why there is a gap."""
    settings = settings or PageSettings()
    language = settings.language
    unknown = text(language, "network.unknown")
    outages = [e for e in events if e.kind == MONITOR_OUTAGE]
    events = [e for e in events if e.kind != MONITOR_OUTAGE]
    open_events = sorted((e for e in events if e.status == "open"),
                         key=lambda e: (-KIND_RANK.get(e.kind, 0), -tier_rank(e.tier), e.start))
    closed = [e for e in events if e.status == "closed"]
    rows = network_rows(latest, open_events)
    countries = list(dict.fromkeys([*settings.countries, *(r.cc for r in rows),
                                    *(e.cc for e in events)]))
    country_rows = []
    for cc in countries:
        mine = [r for r in rows if r.cc == cc]
        total = {v: sum(r.counts[v] for r in mine) for v in VERDICTS}
        measured = any(sum(r.counts.values()) for r in mine)
        css, status = _status_word(_worst([e for e in open_events if e.cc == cc]), language)
        if not mine and not any(e.cc == cc for e in open_events):
            css, status = "none", text(language, "status.noprobes")
        country_rows.append({"cc": cc, "name": country_name(language, cc), "css": css,
                             "status": status, "networks": len(mine), "total": total,
                             "measured": measured})
    network_table = []
    for row in rows:
        css, status = _status_word(row.worst, language)
        network_table.append({
            "country": country_name(language, row.cc),
            "network": settings.names.label(row.asn, unknown), "css": css, "status": status,
            "counts": row.counts,
            "other": row.counts["down"] + row.counts["inconclusive"], "last": row.last})
    keys: list[tuple[str, str | None]] = [(cc, None) for cc in countries]
    keys += sorted({(r.cc, r.asn) for r in rows} | {(e.cc, a) for e in events for a in e.asns})
    chart_rows = []
    for cc, asn in keys:
        label = country_name(language, cc) + (
            f" · {settings.names.label(asn, unknown)}" if asn else "")
        chart_rows.append((label, charts.hourly(events, now, cc, asn)))

    def tooltip(event: EventView) -> str:
        return (f"{text(language, f'kind.{event.kind}')} "
                f"({text(language, f'tier.{event.tier}')})")

    chart = charts.timeline_svg(chart_rows, now, tooltip,
                                text(language, "timeline.label", where=", ".join(
                                    country_name(language, c) for c in countries)))
    outside_rows = [(country_name(language, cc) + f" · {settings.names.label(asn, unknown)}",
                     shares) for (cc, asn), shares in sorted((outside or {}).items())]
    outside_chart = charts.share_svg(
        outside_rows, now,
        lambda share: text(language, "outside.chart.cell", share=round(share * 100)),
        text(language, "outside.chart.label")) if outside_rows else None
    latest_rows = []
    for result in latest:
        verdict = str(result.get("verdict") or "inconclusive")
        latest_rows.append({
            "site": site(str(result.get("input") or result.get("test_name") or ""), language,
                         settings.categories),
            "country": country_name(language, str(result.get("probe_cc") or "")),
            "network": settings.names.label(str(result.get("probe_asn") or ""), unknown),
            "verdict": text(language, f"verdict.{verdict}") if verdict in VERDICTS
            else verdict,
            "css": {"ok": "ok", "blocked": "bad", "throttled": "warn"}.get(verdict, ""),
            "time": result.get("start_time") or ""})
    context = _common(settings, now, text(language, "site.title"))
    context.update({
        "open_cards": [_card(e, settings, now) for e in open_events],
        "closed_cards": [_card(e, settings, now) for e in closed],
        "outages": [_outage(e, settings, now) for e in outages],
        "country_rows": country_rows, "network_rows": network_table,
        "chart": chart, "has_events": bool(events), "latest": latest_rows,
        "outside_chart": outside_chart,
        "no_probes": [c for c in country_rows if c["css"] == "none"],
    })
    return environment().get_template("status.html").render(context)


def event_page(event: EventView, now: datetime, settings: PageSettings | None = None,
               samples: Sequence[Sample] = ()) -> str:
    """Everything known about one event in sentences, the measurements behind it, and a link
    to its full JSON: the link in every alert."""
    settings = settings or PageSettings()
    language = settings.language
    card = _card(event, settings, now)
    unknown = text(language, "network.unknown")
    rows = []
    for asn in event.asns or ():
        label = settings.names.label(asn, unknown)
        rows.append((f"{country_name(language, event.cc)} · {label}",
                     charts.hourly([event], now, event.cc, asn)))
    if not rows:
        rows.append((country_name(language, event.cc),
                     charts.hourly([event], now, event.cc, None)))
    chart = charts.timeline_svg(
        rows, now, lambda e: card["text"].title,
        text(language, "timeline.label", where=country_name(language, event.cc)))
    context = _common(settings, now, card["text"].title)
    context.update({
        "card": card, "chart": chart, "duration": duration(language, event.start, now),
        "samples": [{"uid": s.uid, "time": s.time, "network": s.network, "site": s.site,
                     "verdict": text(language, f"verdict.{s.verdict}")
                     if s.verdict in VERDICTS else s.verdict,
                     "control": text(language, f"control.{s.control}")} for s in samples],
        "is_outage": event.kind == MONITOR_OUTAGE,
    })
    return environment().get_template("event.html").render(context)


def not_found_page(now: datetime, settings: PageSettings | None = None) -> str:
    settings = settings or PageSettings()
    context = _common(settings, now, text(settings.language, "notfound"))
    return environment().get_template("notfound.html").render(context)
