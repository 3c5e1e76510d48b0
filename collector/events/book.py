"""The events the collector knows, as detection published them; read by the status page and
exported to Prometheus, handed on to the notifier.

Detection calls ``EventBook.publish`` with the current state of the events it created or
changed (the design §4 JSON or ``EventView``s). The book keeps the newest version of each event
(by ``updated_at``), forgets closed events after ``keep`` seconds, and forwards every publish to
its sinks (the notifier), which decide for themselves what is worth a message.

Prometheus gets one series per open detection event and network, ``kuzot_event_active``,
carrying the event id so Alertmanager can group one event's alerts into one thread, and the
ASN so a shutdown can inhibit per-target alerts on the same network. The monitor's own
outages (kind ``monitor_outage``) are left out: nothing alerts on them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from collector.events.i18n import Language
from collector.events.kinds import MONITOR_OUTAGE
from collector.events.names import NetworkNames
from collector.events.sentences import describe, start_words
from collector.notify.event import EventView

WEEK = 7 * 86400.0
ALERT_LANGUAGES: tuple[Language, ...] = ("en", "ru")
log = logging.getLogger("kuzot.events")


def _log_change(known: EventView | None, view: EventView) -> None:
    """One line when an event opens, changes tier or closes (not on every growth)."""
    if known is None:
        change = "opened" if view.status == "open" else "closed"
    elif known.status == "open" and view.status == "closed":
        change = "closed"
    elif known.tier != view.tier:
        change = f"now {view.tier} (was {known.tier})"
    else:
        return
    where = view.cc + (" " + ",".join(view.asns) if view.asns else "")
    targets = len(view.targets)
    log.info("event %s %s: %s %s in %s, since %s, %d probe(s), %s", view.id, change, view.kind,
             view.tier, where, view.start.strftime("%Y-%m-%d %H:%M UTC"), view.probes,
             f"{targets} target(s)" if targets else "all targets")


class EventSink(Protocol):
    async def publish(self, events: Iterable[EventView | Mapping[str, Any]]) -> None: ...


class EventBook:
    def __init__(self, sinks: Sequence[EventSink] = (), keep: float = WEEK + 86400.0) -> None:
        self.sinks = list(sinks)
        self.keep = keep
        self._events: dict[str, EventView] = {}

    async def publish(self, events: Iterable[EventView | Mapping[str, Any]],
                      now: datetime | None = None, notify: bool = True) -> list[EventView]:
        """Record the events; returns those that were new or newer than the known version.

        ``notify=False`` only records them (a collector that does not run detection refreshing
        its book from the store: the one that does notifies)."""
        views = [e if isinstance(e, EventView) else EventView.from_json(dict(e))
                 for e in events]
        changed = []
        for view in views:
            known = self._events.get(view.id)
            if known is None or view.updated_at >= known.updated_at:
                self._events[view.id] = view
                changed.append(view)
                if notify:
                    _log_change(known, view)
        self._forget((now or datetime.now(UTC)) - timedelta(seconds=self.keep))
        if notify:
            for sink in self.sinks:
                await sink.publish(changed)
        return changed

    def _forget(self, horizon: datetime) -> None:
        for event_id in [k for k, v in self._events.items()
                         if v.end is not None and v.end < horizon]:
            del self._events[event_id]

    def events(self, since: datetime | None = None) -> list[EventView]:
        """Open events and those that ended after ``since``, newest start first."""
        out = [e for e in self._events.values()
               if since is None or e.end is None or e.end >= since]
        return sorted(out, key=lambda e: (e.start, e.id), reverse=True)

    def get(self, event_id: str) -> EventView | None:
        return self._events.get(event_id)

    def open_events(self) -> list[EventView]:
        return [e for e in self.events() if e.status == "open"]


class EventCollector(Collector):
    """Exports open events at scrape time: one ``kuzot_event_active`` series per network.

    Detection's ``kuzot_events_open{kind,tier,cc}`` counts them; this one carries the event id
    and the ``asn`` label, which Alertmanager's grouping and inhibition (a shutdown of the same
    network) need.
    """

    def __init__(self, book: EventBook, names: NetworkNames | None = None,
                 categories: Mapping[str, str] | None = None) -> None:
        self.book = book
        self.names = names or NetworkNames()
        self.categories = categories or {}

    def collect(self) -> Iterator[GaugeMetricFamily]:
        active = GaugeMetricFamily(
            "kuzot_event_active",
            "Open detection events: 1 per event and network (asn empty for a country-wide "
            "event).", labels=["event_id", "kind", "tier", "cc", "asn", "scope", "mechanism"])
        for event in self.book.open_events():
            if event.kind == MONITOR_OUTAGE:
                continue  # the monitor's own outage alerts no one (researchers see it)
            scope = "network" if event.asns else "country"
            for asn in event.asns or ("",):
                active.add_metric([event.id, event.kind, event.tier, event.cc, asn, scope,
                                   event.mechanism or ""], 1)
        yield active
        yield self._info()

    def _info(self) -> GaugeMetricFamily:
        """``kuzot_event_info``: the event's sentences per language, for alert annotations.

        Alerting rules read them with a ``query`` template, so the alert's own labels (its
        identity in Alertmanager) do not change when a sentence does."""
        info = GaugeMetricFamily(
            "kuzot_event_info", "Open detection events in words, per language: headline, "
            "what, where, event start (local time and UTC), how sure.",
            labels=["event_id", "lang", "headline", "what", "where", "start", "sure"])
        now = datetime.now(UTC)
        for event in self.book.open_events():
            if event.kind == MONITOR_OUTAGE:
                continue
            for language in ALERT_LANGUAGES:
                words = describe(event, language, self.names, self.categories, now)
                start = start_words(language, event.start, event.cc)
                info.add_metric([event.id, language, f"{words.title} ({words.tier})",
                                 words.what, words.where, start, words.sure], 1)
        return info
