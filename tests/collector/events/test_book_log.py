"""The event book: one log line per event change; the events in words for alert annotations."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from collector.events.book import EventBook, EventCollector
from collector.events.names import NetworkNames
from tests.helpers.fleet import fleet_events

NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)


async def test_one_line_per_change_and_none_for_growth(caplog: pytest.LogCaptureFixture) -> None:
    book = EventBook()
    block = fleet_events(NOW)[1]
    caplog.set_level(logging.INFO, logger="kuzot.events")
    await book.publish([block], NOW)
    await book.publish([{**block, "probes": 7, "updated_at": "2024-03-10T12:05:00Z"}], NOW)
    await book.publish([{**block, "tier": "likely", "updated_at": "2024-03-10T12:06:00Z"}], NOW)
    await book.publish([{**block, "tier": "likely", "status": "closed",
                         "end": "2024-03-10T12:10:00Z",
                         "updated_at": "2024-03-10T12:10:00Z"}], NOW)
    await book.publish([fleet_events(NOW)[0]], NOW, notify=False)  # a reader's refresh
    lines = [r.getMessage() for r in caplog.records if r.name == "kuzot.events"]
    assert lines == [
        "event ev-kz-block opened: block confirmed in KZ AS9198, since 2024-03-08 12:00 UTC, "
        "6 probe(s), 1 target(s)",
        "event ev-kz-block now likely (was confirmed): block likely in KZ AS9198, since "
        "2024-03-08 12:00 UTC, 6 probe(s), 1 target(s)",
        "event ev-kz-block closed: block likely in KZ AS9198, since 2024-03-08 12:00 UTC, "
        "6 probe(s), 1 target(s)"]


async def test_events_in_words_for_alertmanager() -> None:
    """The series the promtool test of configs/alerts.yml feeds (ev5) is what the collector
    exports for such an event."""
    book = EventBook()
    block = {**fleet_events(NOW)[1], "id": "ev5", "mechanism": "blockpage",
             "evidence": {"layer": "http", "fingerprints": ["blockpage:kz-1"]}}
    await book.publish([block], NOW)
    collector = EventCollector(book, NetworkNames.load(), {"https://vlast.kz/": "NEWS"})
    families = {f.name: f for f in collector.collect()}
    info = {s.labels["lang"]: s.labels for s in families["kuzot_event_info"].samples}
    assert info["en"] == {
        "event_id": "ev5", "lang": "en", "headline": "Blocking in Kazakhstan (confirmed)",
        "what": "These sites and services cannot be reached: vlast.kz (news media).",
        "where": "Kazakhstan, on Kazakhtelecom (AS9198).",
        "start": "2024-03-08 17:00 local time (2024-03-08 12:00 UTC)",
        "sure": "Confirmed: seen by 6 probes on 1 network, and a known block page was seen."}
    assert info["ru"]["headline"] == "Блокировка: Казахстан (подтверждено)"
    assert info["ru"]["what"] == "Недоступны сайты и сервисы: vlast.kz (СМИ)."
    assert info["ru"]["start"] == "2024-03-08 17:00 по местному времени (2024-03-08 12:00 UTC)"
    assert info["ru"]["sure"] == ("Подтверждено: видят 6 зондов, 1 сеть, замечена известная "
                                  "страница блокировки.")
