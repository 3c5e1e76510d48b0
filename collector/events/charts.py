"""Hour-level timelines as inline SVG: readable without JavaScript, one request, no images.

One row per country and per network: 168 hours, each coloured by the most severe event
touching it (shutdown over blocking over throttling). Neighbouring hours of the same colour are
one rectangle with a ``<title>`` naming the event and its hours, so the SVG stays small and a
screen reader or a hover says what a colour means. Pure; every text is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from markupsafe import Markup, escape

from collector.notify.event import EventView, tier_rank

HOURS = 7 * 24
CELL = 5  # SVG units per hour: 840 wide, scaled to the page's width
ROW = 30
BAR = 14
TOP = 16
COLOURS = {"shutdown": "#b00020", "block": "#e07000", "throttling": "#e8c000", None: "#e4e4e4"}
KIND_RANK = {"shutdown": 3, "block": 2, "throttling": 1}


def first_hour(now: datetime) -> datetime:
    """The start of the oldest of the 168 hours ending with the current one."""
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)


def worst(events: Sequence[EventView]) -> EventView | None:
    if not events:
        return None
    return max(events, key=lambda e: (KIND_RANK.get(e.kind, 0), tier_rank(e.tier)))


def hourly(events: Sequence[EventView], now: datetime, cc: str,
           asn: str | None) -> list[EventView | None]:
    """The worst event touching each hour for a country (``asn`` None) or one network; a
    national event (no ASNs) touches every network of its country."""
    first = first_hour(now)
    mine = [e for e in events if e.kind in KIND_RANK and e.cc == cc
            and (asn is None or not e.asns or asn in e.asns)]
    cells: list[EventView | None] = []
    for index in range(HOURS):
        start = first + timedelta(hours=index)
        end = start + timedelta(hours=1)
        cells.append(worst([e for e in mine if e.start < end and (e.end or now) >= start]))
    return cells


def _frame(first: datetime, rows: int, label: str) -> list[str]:
    """The opening of a chart of ``rows`` rows on the 7-day hour grid: the SVG element, its
    title and a line and date at each midnight (both charts share it, so they align)."""
    width = HOURS * CELL
    height = TOP + ROW * rows + 4
    parts = [f'<svg class="timeline" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(label)}</title>"]
    for day in range(8):
        midnight = (first + timedelta(hours=24 * day)).replace(hour=0)
        x = ((midnight - first).total_seconds() // 3600) * CELL
        if 0 <= x < width:
            parts.append(f'<line x1="{x:.0f}" y1="0" x2="{x:.0f}" y2="{height}" '
                         'stroke="#9a9a9a" stroke-width="1"/>')
            parts.append(f'<text x="{x + 3:.0f}" y="11" font-size="11" fill="#333">'
                         f'{escape(midnight.strftime("%d.%m"))}</text>')
    return parts


def _row(parts: list[str], name: str, index: int) -> int:
    """Write row ``index``'s name and give the row's top."""
    y = TOP + ROW * index
    parts.append(f'<text x="2" y="{y + 11}" font-size="12" fill="#1b1b1b">'
                 f"{escape(name)}</text>")
    return y


def timeline_svg(rows: Sequence[tuple[str, list[EventView | None]]], now: datetime,
                 describe: Callable[[EventView], str], label: str) -> Markup:
    """An SVG of ``rows`` (label, 168 cells); ``describe`` names an event for its tooltip."""
    first = first_hour(now)
    parts = _frame(first, len(rows), label)
    for index, (name, cells) in enumerate(rows):
        y = _row(parts, name, index)
        start = 0
        while start < len(cells):
            end = start
            while end + 1 < len(cells) and cells[end + 1] is cells[start]:
                end += 1
            event = cells[start]
            colour = COLOURS[event.kind if event is not None else None]
            since = (first + timedelta(hours=start)).strftime("%d.%m %H:00")
            until = (first + timedelta(hours=end + 1)).strftime("%d.%m %H:00")
            what = describe(event) if event is not None else "—"
            parts.append(f'<rect x="{start * CELL}" y="{y + 14}" width="{(end - start + 1) * CELL}"'
                         f' height="{BAR}" fill="{colour}"><title>{escape(since)}–'
                         f"{escape(until)} UTC: {escape(what)}</title></rect>")
            start = end + 1
    parts.append("</svg>")
    return Markup("".join(parts))


SHARE_COLOUR = "#2f5d8a"
NO_DATA = "#e4e4e4"


def share_svg(rows: Sequence[tuple[str, Sequence[float | None]]], now: datetime,
              cell_text: Callable[[float], str], label: str) -> Markup:
    """An SVG of ``rows`` (label, 168 hourly shares in [0, 1] or None): per hour a bar as high
    as the share, on the same hour grid as ``timeline_svg`` so the two read side by side.
    Hours without data are one grey band per run of them."""
    first = first_hour(now)
    parts = _frame(first, len(rows), label)
    for index, (name, cells) in enumerate(rows):
        y = _row(parts, name, index)
        start = 0
        while start < len(cells):
            value = cells[start]
            since = (first + timedelta(hours=start)).strftime("%d.%m %H:00")
            if value is None:
                end = start
                while end + 1 < len(cells) and cells[end + 1] is None:
                    end += 1
                until = (first + timedelta(hours=end + 1)).strftime("%d.%m %H:00")
                parts.append(f'<rect x="{start * CELL}" y="{y + 14}" '
                             f'width="{(end - start + 1) * CELL}" height="{BAR}" '
                             f'fill="{NO_DATA}"><title>{escape(since)}–{escape(until)} UTC: '
                             f"—</title></rect>")
                start = end + 1
                continue
            share = min(1.0, max(0.0, value))
            tall = max(1.0, share * BAR)
            until = (first + timedelta(hours=start + 1)).strftime("%H:00")
            parts.append(f'<rect x="{start * CELL}" y="{y + 14 + BAR - tall:.1f}" '
                         f'width="{CELL}" height="{tall:.1f}" fill="{SHARE_COLOUR}">'
                         f"<title>{escape(since)}–{escape(until)} UTC: "
                         f"{escape(cell_text(share))}</title></rect>")
            start += 1
    parts.append("</svg>")
    return Markup("".join(parts))
