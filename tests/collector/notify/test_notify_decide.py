"""What each reader hears about an event, on tables; and the words they read, in both languages."""

from __future__ import annotations

import re
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


def test_english_messages_say_what_where_since_when_how_sure_and_link() -> None:
    opened = render(Transition("opened", event()), "en", "https://status.example/")
    assert opened.subject == "[Kuzot] Blocking in Kazakhstan (likely)"
    # Kazakhstan was on UTC+6 in January 2022.
    assert opened.text.splitlines() == [
        "Blocking in Kazakhstan (likely)",
        "What: These sites and services cannot be reached: rus.azattyq.org.",
        "Where: Kazakhstan, on Kazakhtelecom (AS9198).",
        "Since: 2022-01-05 20:05 local time (2022-01-05 14:05 UTC), for 3 h 20 min so far.",
        "How sure: Likely: seen by 5 probes on 1 network at the same time.",
        "How: Connections hang until they time out (at the TLS step).",
        "Details: https://status.example/events/ev1"]
    escalated = render(Transition("escalated", event("confirmed"), "likely"), "en", "https://s")
    assert escalated.text.splitlines()[0] == \
        "Blocking in Kazakhstan: now confirmed (was likely)"
    closed = render(Transition("closed", event(status="closed"), "likely"), "en", "https://s")
    assert closed.text.splitlines()[:2] == ["Blocking in Kazakhstan: ended",
                                            "What: These sites and services cannot be reached: "
                                            "rus.azattyq.org."]
    assert ("When: From 2022-01-05 20:05 to 2022-01-05 23:25 local time (2022-01-05 14:05 to "
            "2022-01-05 17:25 UTC), 3 h 20 min.") in closed.text.splitlines()


# Each kind of event in each language: the first line and the sentences a reader gets.
KIND_TEXTS = {
    ("shutdown", "en"): ["Internet shutdown in Kyrgyzstan (confirmed)",
                         "What: Internet access is cut off.",
                         "Where: Kyrgyzstan, on ElCat (AS8449).",
                         "How sure: Confirmed: seen by 5 probes on 1 network.",
                         "How: Probes on these networks stopped reaching anything outside the "
                         "country at the same time."],
    ("shutdown", "ru"): ["Отключение интернета: Кыргызстан (подтверждено)",
                         "Что: Доступ в интернет отключён.",
                         "Где: Кыргызстан, сети: ElCat (AS8449).",
                         "Насколько точно: Подтверждено: видят 5 зондов, 1 сеть.",
                         "Как: Зонды в этих сетях одновременно перестали достигать чего-либо "
                         "за пределами страны."],
    ("block", "en"): ["Blocking in Kyrgyzstan (confirmed)",
                      "What: These sites and services cannot be reached: kloop.kg (news media), "
                      "Telegram.",
                      "How sure: Confirmed: seen by 5 probes on 1 network, and a known block "
                      "page was seen.",
                      "How: A block page is shown instead of the site (at the HTTP step)."],
    ("block", "ru"): ["Блокировка: Кыргызстан (подтверждено)",
                      "Что: Недоступны сайты и сервисы: kloop.kg (СМИ), Telegram.",
                      "Насколько точно: Подтверждено: видят 5 зондов, 1 сеть, замечена "
                      "известная страница блокировки.",
                      "Как: Вместо сайта показывается страница блокировки (на этапе HTTP)."],
    ("throttling", "en"): ["Throttling in Kyrgyzstan (confirmed)",
                           "What: These sites and services are slowed down: kloop.kg (news "
                           "media), Telegram.",
                           "How: Traffic to the site's name is slowed down."],
    ("throttling", "ru"): ["Замедление: Кыргызстан (подтверждено)",
                           "Что: Замедлены сайты и сервисы: kloop.kg (СМИ), Telegram.",
                           "Как: Замедляется трафик по имени сайта."],
}


@pytest.mark.parametrize(("kind", "language"), list(KIND_TEXTS))
def test_each_kind_in_each_language(kind: str, language: str) -> None:
    shapes = {
        "shutdown": {"targets": [], "mechanism": None, "evidence": {"scope": "asn"}},
        "block": {"targets": ["https://kloop.kg/", "telegram"], "mechanism": "blockpage",
                  "evidence": {"layer": "http", "fingerprints": ["blockpage:kg-1"]}},
        "throttling": {"targets": ["https://kloop.kg/", "telegram"],
                       "mechanism": "sni_throttle", "evidence": {"class": "targeted"}},
    }
    changed = event("confirmed", kind=kind, cc="KG", asns=["AS8449"], **shapes[kind])
    message = render(Transition("opened", changed), language, "https://s",  # type: ignore[arg-type]
                     categories={"https://kloop.kg/": "NEWS"})
    lines = message.text.splitlines()
    for expected in KIND_TEXTS[(kind, language)]:
        assert expected in lines, (expected, lines)
    assert lines[-1] in ("Details: https://s/events/ev1", "Подробности: https://s/events/ev1")
    # No internal key, no English word in the Russian text but names.
    for raw in ("sni_throttle", "blockpage", "fingerprints", "AS0", "{", "null", "kg-1"):
        assert raw not in message.text
    if language == "ru":
        assert set(re.findall(r"[A-Za-z]{3,}", message.text)) <= {
            "Kuzot", "ElCat", "HTTP", "UTC", "Telegram", "kloop", "https", "events"}


def test_html_variant_escapes_what_it_quotes() -> None:
    nasty = event(targets=["https://x/?a=<b>&c", "<script>"], evidence={"layer": "<i>"})
    message = render(Transition("opened", nasty), "en", "https://s")
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
    assert "<i>" not in message.html
    assert '<a href="https://s/events/ev1">' in message.html
    assert message.html.startswith("<b>Blocking in Kazakhstan (likely)</b>")


def test_many_targets_are_cut_with_a_count() -> None:
    targets = [f"https://site{i}.kz/" for i in range(40)]
    message = render(Transition("opened", event(targets=targets)), "en", "https://s")
    what = message.text.splitlines()[1]
    assert "site7.kz" in what and "site8.kz" not in what and "and 32 more" in what


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
    assert "(2022-01-05 14:05 to 2022-01-05 14:50 UTC), 45 min." in text
    assert short.start == NOW and short.end == NOW + timedelta(minutes=45)
