"""Message templates in English and Russian: the status page's own sentences, and the link.

Media partners read these during a protest on a phone, so the first line says what and where
and how sure ("Blocking in Kazakhstan (confirmed)"); then the same labelled sentences as the
event page (what, where, since when in local time and UTC, how sure in words, how), with
networks by provider name and sites with their categories; the event page's link comes last.
No internal key and no raw JSON reaches the reader (``collector.events.sentences``). The same
text goes to every channel; Telegram gets an HTML variant with the same words.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Literal
from urllib.parse import quote

from collector.events.i18n import text
from collector.events.names import NetworkNames
from collector.events.sentences import EventText, describe
from collector.notify.decide import Transition

Language = Literal["en", "ru"]
LANGUAGES: tuple[Language, ...] = ("en", "ru")


@dataclass(frozen=True, slots=True)
class Message:
    """One notification: a subject line, plain text, and an HTML variant of the same text."""

    subject: str
    text: str
    html: str


@cache
def shipped_names() -> NetworkNames:
    return NetworkNames.load()


def event_link(public_url: str, event_id: str) -> str:
    """The status page of one event; every message ends with it."""
    return f"{public_url.rstrip('/')}/events/{quote(event_id, safe='')}"


def _words(transition: Transition, language: Language, names: NetworkNames | None,
           categories: Mapping[str, str] | None) -> EventText:
    event = transition.event
    # "for ... so far" is counted to the event's last update, which is when it was published.
    now = event.updated_at if event.status == "open" else datetime.now(UTC)
    return describe(event, language, names or shipped_names(), categories or {}, now)


def headline(transition: Transition, language: Language, names: NetworkNames | None = None,
             categories: Mapping[str, str] | None = None) -> str:
    """The first line: what, where, how sure (or that it ended)."""
    words = _words(transition, language, names, categories)
    previous = transition.previous_tier
    if transition.change == "escalated" and previous:
        return text(language, "alert.escalated", title=words.title, tier=words.tier,
                    previous=text(language, f"tier.{previous}"))
    if transition.change == "closed":
        return text(language, "alert.closed", title=words.title)
    return text(language, "alert.opened", title=words.title, tier=words.tier)


def render(transition: Transition, language: Language, public_url: str,
           names: NetworkNames | None = None,
           categories: Mapping[str, str] | None = None) -> Message:
    """The message for one transition in one language."""
    words = _words(transition, language, names, categories)
    first = headline(transition, language, names, categories)
    lines = words.lines(language)
    link = event_link(public_url, transition.event.id)
    text_lines = [first, *(f"{label}: {sentence}" for label, sentence in lines),
                  text(language, "alert.link", link=link)]
    anchor = f'<a href="{html.escape(link, quote=True)}">{html.escape(link)}</a>'
    html_lines = [f"<b>{html.escape(first)}</b>",
                  *(f"<b>{html.escape(label)}:</b> {html.escape(sentence)}"
                    for label, sentence in lines),
                  html.escape(text(language, "alert.link", link="")).rstrip() + " " + anchor]
    return Message(subject=f"[Kuzot] {first}", text="\n".join(text_lines),
                   html="\n".join(html_lines))


def render_digest(transitions: list[Transition], language: Language, public_url: str,
                  names: NetworkNames | None = None,
                  categories: Mapping[str, str] | None = None) -> Message:
    """One message for many changes at once: the flood guard's way of still saying everything."""
    first = text(language, "alert.digest", n=len(transitions))
    heads = [headline(t, language, names, categories) for t in transitions]
    links = [event_link(public_url, t.event.id) for t in transitions]
    body = "\n".join([first, *(f"- {h} {link}" for h, link in zip(heads, links, strict=True))])
    html_text = "\n".join([f"<b>{html.escape(first)}</b>", *(
        f'- {html.escape(h)} <a href="{html.escape(link, quote=True)}">{html.escape(link)}</a>'
        for h, link in zip(heads, links, strict=True))])
    return Message(subject=f"[Kuzot] {first}", text=body, html=html_text)
