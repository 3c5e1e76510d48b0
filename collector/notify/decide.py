"""What one destination should be told about one event: a pure function, tested on tables.

A destination (a webhook, a Telegram chat, a mailbox) has a minimum tier. It hears about an
event once when the event reaches that tier (``opened``), once each time the tier rises
(``escalated``) and once when it closes (``closed``), and never otherwise: updates to evidence,
new targets joining the same event or a tier falling back do not produce messages. That is what
keeps one national block of 40 domains one thread, not 200 alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from collector.notify.event import EventView, tier_rank

Change = Literal["opened", "escalated", "closed"]


@dataclass(frozen=True, slots=True)
class Transition:
    """A change worth one message: the event as it is now and the tier the reader last heard."""

    change: Change
    event: EventView
    previous_tier: str | None = None


def decide(told_tier: str | None, told_closed: bool, event: EventView,
           min_tier: str) -> Transition | None:
    """The message a destination needs, given what it was last told.

    ``told_tier`` is the tier in the last message sent about this event (None if nothing was
    sent), ``told_closed`` whether that message was the closing one. An event that opened and
    closed between two looks (for example a shutdown reported late, after the probes' uploads
    came back) is announced once, as closed, if it reached the destination's tier.
    """
    reaches = tier_rank(event.tier) >= tier_rank(min_tier)
    if told_closed:
        return None
    if event.status == "closed":
        if told_tier is not None or reaches:
            return Transition("closed", event, told_tier)
        return None
    if not reaches:
        return None
    if told_tier is None:
        return Transition("opened", event)
    if tier_rank(event.tier) > tier_rank(told_tier):
        return Transition("escalated", event, told_tier)
    return None
