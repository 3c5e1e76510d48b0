"""Message templates in English and Russian: short, correct, with the evidence and the link.

Media partners read these during a protest on a phone, so the first line says what, where and
since when; details follow; the status page link comes last. Russian avoids adjective agreement
by putting the tier in parentheses ("Блокировка (вероятно)"), so one template serves all kinds.
The same text goes to every channel; Telegram gets an HTML variant with the same words.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from collector.events.kinds import BLOCK, MONITOR_BLOCKED, SHUTDOWN, THROTTLING
from collector.notify.decide import Transition
from collector.notify.event import EventView

Language = Literal["en", "ru"]
LANGUAGES: tuple[Language, ...] = ("en", "ru")
MAX_TARGETS = 5
MAX_EVIDENCE = 8
MAX_VALUE = 120

_WORDS: dict[Language, dict[str, str]] = {
    "en": {
        SHUTDOWN: "Internet shutdown", BLOCK: "Blocking", THROTTLING: "Throttling",
        MONITOR_BLOCKED: "Monitor blocked",
        "suspected": "suspected", "likely": "likely", "confirmed": "confirmed",
        "KG": "Kyrgyzstan", "KZ": "Kazakhstan",
        "opened": "{kind} ({tier}): {what}, {where}, since {start} UTC.",
        "escalated": "{kind} now {tier} (was {previous}): {what}, {where}, since {start} UTC.",
        "closed": "{kind} ended: {what}, {where}, {start} to {end} UTC ({duration}).",
        "mechanism": "Mechanism: {value}", "probes": "Seen by {value} probe(s).",
        "targets": "Targets: {value}", "more": "and {value} more", "evidence": "Evidence:",
        "link": "Details: {value}", "hours": "{h} h {m} min", "minutes": "{m} min",
        "everything": "all sites", "digest": "{value} events changed:",
        "subject": "[Kuzot] {line}",
    },
    "ru": {
        SHUTDOWN: "Отключение интернета", BLOCK: "Блокировка", THROTTLING: "Замедление",
        MONITOR_BLOCKED: "Блокировка мониторинга",
        "suspected": "предположительно", "likely": "вероятно", "confirmed": "подтверждено",
        "KG": "Кыргызстан", "KZ": "Казахстан",
        "opened": "{kind} ({tier}): {what}, {where}, с {start} UTC.",
        "escalated": "{kind} ({tier}, было: {previous}): {what}, {where}, с {start} UTC.",
        "closed": "Завершено — {kind}: {what}, {where}, с {start} по {end} UTC ({duration}).",
        "mechanism": "Механизм: {value}", "probes": "Зондов, видевших это: {value}.",
        "targets": "Цели: {value}", "more": "и ещё {value}", "evidence": "Данные:",
        "link": "Подробности: {value}", "hours": "{h} ч {m} мин", "minutes": "{m} мин",
        "everything": "все сайты", "digest": "Изменилось событий: {value}.",
        "subject": "[Kuzot] {line}",
    },
}


@dataclass(frozen=True, slots=True)
class Message:
    """One notification: a subject line, plain text, and an HTML variant of the same text."""

    subject: str
    text: str
    html: str


def event_link(public_url: str, event_id: str) -> str:
    """The status page of one event; every message ends with it."""
    return f"{public_url.rstrip('/')}/events/{event_id}"


def _time(moment: datetime | None) -> str:
    return "?" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def _duration(words: dict[str, str], event: EventView) -> str:
    end = event.end or event.updated_at
    minutes = max(0, int((end - event.start).total_seconds() // 60))
    if minutes >= 60:
        return words["hours"].format(h=minutes // 60, m=minutes % 60)
    return words["minutes"].format(m=minutes)


def _what(words: dict[str, str], event: EventView) -> str:
    if not event.targets:
        return words["everything"]
    shown = ", ".join(event.targets[:MAX_TARGETS])
    rest = len(event.targets) - MAX_TARGETS
    return shown if rest <= 0 else f"{shown} {words['more'].format(value=rest)}"


def _where(words: dict[str, str], event: EventView) -> str:
    country = words.get(event.cc, event.cc)
    return country if not event.asns else f"{country} ({', '.join(event.asns)})"


def headline(transition: Transition, language: Language) -> str:
    """The first line: what, where, since when."""
    words = _WORDS[language]
    event = transition.event
    previous = transition.previous_tier
    return words[transition.change].format(
        kind=words[event.kind], tier=words[event.tier],
        previous=words[previous] if previous else "", what=_what(words, event),
        where=_where(words, event), start=_time(event.start), end=_time(event.end),
        duration=_duration(words, event))


def _evidence_lines(event: EventView) -> list[str]:
    lines = []
    for key in sorted(event.evidence)[:MAX_EVIDENCE]:
        value = event.evidence[key]
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False,
                                                                 sort_keys=True)
        if len(shown) > MAX_VALUE:
            shown = shown[: MAX_VALUE - 1] + "…"
        lines.append(f"- {key}: {shown}")
    return lines


def render(transition: Transition, language: Language, public_url: str) -> Message:
    """The message for one transition in one language."""
    words = _WORDS[language]
    event = transition.event
    first = headline(transition, language)
    details = []
    if event.mechanism:
        details.append(words["mechanism"].format(value=event.mechanism))
    if event.probes:
        details.append(words["probes"].format(value=event.probes))
    if len(event.targets) > MAX_TARGETS:
        details.append(words["targets"].format(value=", ".join(event.targets)))
    evidence = _evidence_lines(event)
    link = event_link(public_url, event.id)
    text_lines = [first, *details]
    if evidence:
        text_lines += [words["evidence"], *evidence]
    text_lines.append(words["link"].format(value=link))
    html_lines = [f"<b>{html.escape(first)}</b>", *(html.escape(d) for d in details)]
    if evidence:
        html_lines += [html.escape(words["evidence"]), *(html.escape(e) for e in evidence)]
    anchor = f'<a href="{html.escape(link, quote=True)}">{html.escape(link)}</a>'
    html_lines.append(html.escape(words["link"].format(value="")).rstrip() + " " + anchor)
    return Message(subject=words["subject"].format(line=first), text="\n".join(text_lines),
                   html="\n".join(html_lines))


def render_digest(transitions: list[Transition], language: Language,
                  public_url: str) -> Message:
    """One message for many changes at once: the flood guard's way of still saying everything."""
    words = _WORDS[language]
    first = words["digest"].format(value=len(transitions))
    heads = [headline(t, language) for t in transitions]
    links = [event_link(public_url, t.event.id) for t in transitions]
    text = "\n".join([first, *(f"- {h} {link}" for h, link in zip(heads, links, strict=True))])
    html_text = "\n".join([f"<b>{html.escape(first)}</b>", *(
        f'- {html.escape(h)} <a href="{html.escape(link, quote=True)}">{html.escape(link)}</a>'
        for h, link in zip(heads, links, strict=True))])
    return Message(subject=words["subject"].format(line=first), text=text, html=html_text)
