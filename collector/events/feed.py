"""Atom feeds (RFC 4287) of events, for everyone and per country, to subscribe to.

An entry per event, identified by its permalink (the event page), ``updated`` when the event
grows, escalates or ends, so a feed reader shows the change. The summary is the same plain
sentences as the page. Rendered by jinja2 with XML autoescaping.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from urllib.parse import quote

from collector.events.i18n import Language, text
from collector.events.kinds import MONITOR_OUTAGE
from collector.events.names import NetworkNames
from collector.events.sentences import country_name, describe
from collector.events.templating import environment
from collector.notify.event import EventView

MAX_ENTRIES = 100


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def atom(events: Sequence[EventView], now: datetime, *, base: str, self_url: str,
         language: Language, names: NetworkNames, categories: Mapping[str, str],
         cc: str | None = None) -> str:
    """The feed of ``events`` (the monitor's own outages are left out: they are no event
    about the Internet), most recently updated first."""
    shown = sorted((e for e in events if e.kind != MONITOR_OUTAGE and (cc is None or e.cc == cc)),
                   key=lambda e: (e.updated_at, e.id), reverse=True)[:MAX_ENTRIES]
    entries = []
    for event in shown:
        words = describe(event, language, names, categories, now)
        summary = " ".join(f"{label}: {sentence}" for label, sentence in words.lines(language))
        entries.append({
            "title": f"{words.title} ({words.tier})",
            "url": f"{base}/events/{quote(event.id, safe='')}",
            "published": _iso(event.start), "updated": _iso(event.updated_at),
            "kind": event.kind, "kind_word": words.kind, "summary": summary})
    updated = max((e.updated_at for e in shown), default=now)
    title = (text(language, "feed.country", country=country_name(language, cc)) if cc
             else text(language, "feed.title"))
    return environment().get_template("feed.xml").render(
        lang=language, title=title, self_url=self_url, base=base, updated=_iso(updated),
        entries=entries)
