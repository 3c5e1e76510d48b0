"""The collector says in its log, one line each, when an event opens, changes tier or closes."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from collector.eventbook import EventBook
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
