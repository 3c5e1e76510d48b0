"""What each reader hears about an event, on tables; and the words they read, in both languages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collector.notify.decide import Transition, decide
from collector.notify.event import EventView
from collector.notify.templates import render, render_digest

NOW = datetime(2022, 1, 5, 14, 5, tzinfo=UTC)


def event(tier: str = "likely", status: str = "open", **changes: Any) -> EventView:
    data: dict[str, Any] = {
        "id": "ev1", "kind": "block", "tier": tier, "status": status,
        "start": "2022-01-05T14:05:00Z",
        "end": "2022-01-05T17:25:00Z" if status == "closed" else None,
        "updated_at": "2022-01-05T17:25:00Z", "cc": "KZ", "asns": ["AS9198"],
        "targets": ["https://rus.azattyq.org/"], "mechanism": "tls_timeout", "probes": 5,
        "evidence": {"blocked_share_lower_bound": 0.91, "control": "reachable"}}
    data.update(changes)
    return EventView.from_json(data)


DECISIONS = [
    # told tier, told closed, event tier, status, reader's minimum -> change, previous tier
    (None, False, "suspected", "open", "suspected", "opened", None),
    (None, False, "suspected", "open", "likely", None, None),
    (None, False, "likely", "open", "likely", "opened", None),
    (None, False, "confirmed", "open", "likely", "opened", None),
    ("suspected", False, "suspected", "open", "suspected", None, None),
    ("suspected", False, "likely", "open", "suspected", "escalated", "suspected"),
    ("likely", False, "confirmed", "open", "likely", "escalated", "likely"),
    ("confirmed", False, "likely", "open", "likely", None, None),  # a fall is no news
    ("likely", False, "likely", "closed", "likely", "closed", "likely"),
    ("likely", True, "likely", "closed", "likely", None, None),    # said once already
    (None, False, "suspected", "closed", "likely", None, None),    # never reached the reader
    (None, False, "confirmed", "closed", "likely", "closed", None),  # reported late
    ("suspected", False, "suspected", "closed", "suspected", "closed", "suspected"),
]


@pytest.mark.parametrize(("told", "closed", "tier", "status", "minimum", "change", "previous"),
                         DECISIONS)
def test_decide(told: str | None, closed: bool, tier: str, status: str, minimum: str,
                change: str | None, previous: str | None) -> None:
    result = decide(told, closed, event(tier, status), minimum)
    if change is None:
        assert result is None
    else:
        assert result is not None
        assert (result.change, result.previous_tier) == (change, previous)


@pytest.mark.parametrize(("data", "message"), [
    ([], "event: expected a JSON object"),
    ({"id": ""}, "event.id: required non-empty string"),
    ({"kind": "outage"}, "event.kind: one of shutdown, block, throttling"),
    ({"tier": "certain"}, "event.tier: one of suspected, likely, confirmed"),
    ({"start": "yesterday"}, "event.start: not an ISO 8601 time"),
    ({"asns": "AS1"}, "event.asns: expected a list of strings"),
    ({"probes": -1}, "event.probes: expected a non-negative integer"),
])
def test_malformed_events_are_refused_with_the_key(data: Any, message: str) -> None:
    good = event().to_json()
    with pytest.raises(ValueError, match=message):
        EventView.from_json({**good, **data} if isinstance(data, dict) else data)


def test_event_json_round_trips() -> None:
    original = event(status="closed")
    assert EventView.from_json(original.to_json()) == original
    assert original.to_json()["end"] == "2022-01-05T17:25:00Z"


def test_english_messages_say_what_where_since_when_with_evidence_and_link() -> None:
    opened = render(Transition("opened", event()), "en", "https://status.example/")
    assert opened.subject == ("[Kuzot] Blocking (likely): https://rus.azattyq.org/, "
                              "Kazakhstan (AS9198), since 2022-01-05 14:05 UTC.")
    assert opened.text.splitlines() == [
        "Blocking (likely): https://rus.azattyq.org/, Kazakhstan (AS9198), since "
        "2022-01-05 14:05 UTC.",
        "Mechanism: tls_timeout", "Seen by 5 probe(s).", "Evidence:",
        "- blocked_share_lower_bound: 0.91", "- control: reachable",
        "Details: https://status.example/events/ev1"]
    escalated = render(Transition("escalated", event("confirmed"), "likely"), "en", "https://s")
    assert escalated.text.startswith("Blocking now confirmed (was likely): ")
    closed = render(Transition("closed", event(status="closed"), "likely"), "en", "https://s")
    assert closed.text.startswith(
        "Blocking ended: https://rus.azattyq.org/, Kazakhstan (AS9198), 2022-01-05 14:05 to "
        "2022-01-05 17:25 UTC (3 h 20 min).")


def test_russian_messages() -> None:
    opened = render(Transition("opened", event(kind="shutdown", targets=[], asns=[])), "ru",
                    "https://status.example")
    assert opened.text.splitlines()[0] == (
        "Отключение интернета (вероятно): все сайты, Казахстан, с 2022-01-05 14:05 UTC.")
    assert "Механизм: tls_timeout" in opened.text
    assert opened.text.endswith("Подробности: https://status.example/events/ev1")
    escalated = render(Transition("escalated", event("confirmed"), "likely"), "ru", "https://s")
    assert escalated.text.startswith("Блокировка (подтверждено, было: вероятно): ")
    closed = render(Transition("closed", event(status="closed"), "likely"), "ru", "https://s")
    assert "(3 ч 20 мин)" in closed.text.splitlines()[0]
    assert closed.text.startswith("Завершено — Блокировка: ")


def test_html_variant_escapes_what_it_quotes() -> None:
    nasty = event(targets=["https://x/?a=<b>&c"], evidence={"note": "<script>"})
    message = render(Transition("opened", nasty), "en", "https://s")
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
    assert '<a href="https://s/events/ev1">' in message.html
    assert message.html.startswith("<b>Blocking (likely): https://x/?a=&lt;b&gt;&amp;c")


def test_many_targets_are_listed_in_full_below_a_short_first_line() -> None:
    targets = [f"https://site{i}.kz/" for i in range(40)]
    message = render(Transition("opened", event(targets=targets)), "en", "https://s")
    first = message.text.splitlines()[0]
    assert "site4.kz" in first and "site5.kz" not in first and "and 35 more" in first
    assert "https://site39.kz/" in message.text


def test_digest_names_every_change_with_its_link() -> None:
    changes = [Transition("opened", event(id=f"ev{i}")) for i in range(4)]
    digest = render_digest(changes, "en", "https://s")
    assert digest.text.splitlines()[0] == "4 events changed:"
    for i in range(4):
        assert f"https://s/events/ev{i}" in digest.text


def test_duration_under_an_hour_and_the_start_shown_in_utc() -> None:
    short = event(status="closed", start="2022-01-05T19:05:00+05:00",
                  end="2022-01-05T14:50:00Z")
    text = render(Transition("closed", short, "likely"), "en", "https://s").text
    assert "2022-01-05 14:05 to 2022-01-05 14:50 UTC (45 min)" in text
    assert short.start == NOW and short.end == NOW + timedelta(minutes=45)
