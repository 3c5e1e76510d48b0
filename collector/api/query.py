"""Query-string parsing for the read API: filters, cursors, axes. Pure; every error names its key.

The same filters serve ``/api/v1/measurements`` and ``/api/v1/aggregation``. Unknown or repeated
parameters are errors, so a typo (``?country=KG``) does not silently return everything.
Pagination is by keyset: the cursor is an opaque token for the (start_time, uid) of the last row
of a page; rows inserted later do not shift the pages already read.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from collector.events import kinds
from collector.store import AXES, TIME_FORMAT, VERDICTS, Axis, EventFilter, Filters

FILTER_PARAMS = ("since", "until", "cc", "asn", "test_name", "input", "domain")
LIST_PARAMS = (*FILTER_PARAMS, "verdict", "limit", "cursor", "full")
AGGREGATION_PARAMS = (*FILTER_PARAMS, "axis_x", "axis_y")
EVENT_PARAMS = ("since", "until", "cc", "asn", "kind", "status", "tier", "limit")
EVENT_CHOICES = {"kind": kinds.ALL,
                 "status": ("open", "closed"),
                 "tier": ("suspected", "likely", "confirmed")}
DEFAULT_PAGE = 100
# fullmatch with ASCII classes: "\d" would take other scripts' digits and "$" a final newline.
_CC = re.compile(r"[A-Za-z]{2}")
_ASN = re.compile(r"(?:AS|as)?([1-9][0-9]{0,9}|0)")
_TEST = re.compile(r"[a-z0-9_]{2,30}")
_DOMAIN = re.compile(r"[A-Za-z0-9.\-_]{1,253}")
_COUNT = re.compile(r"[0-9]{1,9}")


class BadQuery(ValueError):
    """A query parameter is unknown, repeated or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class ListQuery:
    filters: Filters
    after: tuple[str, str] | None
    limit: int
    full: bool


def parse_time(value: str, name: str) -> str:
    """UTC ``YYYY-MM-DD HH:MM:SS`` from a date, OONI's format, or ISO 8601 with a zone."""
    # An unencoded "+" in a query string arrives as a space: "...T18:30:00 06:00".
    text = re.sub(r"(T\d{2}:\d{2}(?::\d{2})?) (\d{2}:\d{2})$", r"\1+\2", value.strip())
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            moment = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            # An offset can carry 0001-01-01 or 9999-12-31 past the representable range.
            moment = (moment.replace(tzinfo=UTC) if moment.tzinfo is None
                      else moment.astimezone(UTC))
    except OverflowError as exc:
        raise BadQuery(f"{name}: year out of range") from exc
    except ValueError as exc:
        raise BadQuery(f"{name}: expected a date or time such as 2024-05-01 or "
                       f"2024-05-01T12:00:00Z") from exc
    if not 1970 <= moment.year <= 9998:
        raise BadQuery(f"{name}: year out of range")
    return moment.strftime(TIME_FORMAT)


def _single(query: Mapping[str, str], allowed: tuple[str, ...]) -> dict[str, str]:
    """The parameters as a plain dict; unknown and repeated ones are errors."""
    getall = getattr(query, "getall", None)
    out: dict[str, str] = {}
    for key in query:
        if key not in allowed:
            raise BadQuery(f"{key}: unknown parameter (allowed: {', '.join(allowed)})")
        if key in out or (getall is not None and len(getall(key)) > 1):
            raise BadQuery(f"{key}: given more than once")
        out[key] = query[key]
    return out


def _filters(params: dict[str, str]) -> Filters:
    values: dict[str, str | None] = {}
    for name in ("since", "until"):
        if name in params:
            values[name] = parse_time(params[name], name)
    if "cc" in params:
        if not _CC.fullmatch(params["cc"]):
            raise BadQuery("cc: two letters (ISO 3166-1 alpha-2)")
        values["cc"] = params["cc"].upper()
    if "asn" in params:
        match = _ASN.fullmatch(params["asn"])
        if not match:
            raise BadQuery("asn: AS number such as AS8449 or 8449")
        values["asn"] = f"AS{match.group(1)}"
    if "test_name" in params:
        if not _TEST.fullmatch(params["test_name"]):
            raise BadQuery("test_name: 2-30 characters of [a-z0-9_]")
        values["test_name"] = params["test_name"]
    if "input" in params:
        # PostgreSQL refuses NUL in text.
        if not 0 < len(params["input"]) <= 2048 or "\x00" in params["input"]:
            raise BadQuery("input: 1-2048 characters, no NUL")
        values["input"] = params["input"]
    if "domain" in params:
        if not _DOMAIN.fullmatch(params["domain"]):
            raise BadQuery("domain: a host name")
        values["domain"] = params["domain"].lower().rstrip(".")
    if "verdict" in params:
        if params["verdict"] not in VERDICTS:
            raise BadQuery(f"verdict: one of {', '.join(VERDICTS)}")
        values["verdict"] = params["verdict"]
    since, until = values.get("since"), values.get("until")
    if since is not None and until is not None and since >= until:
        raise BadQuery("until: must be after since")
    return Filters(**values)


def _limit(value: str, max_page: int) -> int:
    # ASCII digits only and few of them: str.isdigit() accepts "²", which int() refuses, and
    # int() refuses more than 4300 digits.
    if not _COUNT.fullmatch(value) or not 1 <= int(value) <= max_page:
        raise BadQuery(f"limit: an integer from 1 to {max_page}")
    return int(value)


def encode_cursor(start_time: str, uid: str) -> str:
    raw = json.dumps([start_time, uid], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        start, uid = json.loads(raw)
        datetime.strptime(start, TIME_FORMAT)
        if not isinstance(uid, str):
            raise TypeError("uid")
    except (ValueError, TypeError, binascii.Error) as exc:
        raise BadQuery("cursor: not a cursor returned by this API") from exc
    return start, uid


def parse_list(query: Mapping[str, str], max_page: int) -> ListQuery:
    params = _single(query, LIST_PARAMS)
    limit = DEFAULT_PAGE
    if "limit" in params:
        limit = _limit(params["limit"], max_page)
    full = params.get("full", "false")
    if full not in ("true", "false"):
        raise BadQuery("full: true or false")
    after = decode_cursor(params["cursor"]) if "cursor" in params else None
    return ListQuery(_filters(params), after, limit, full == "true")


def parse_aggregation(query: Mapping[str, str]) -> tuple[Filters, tuple[Axis, ...]]:
    params = _single(query, AGGREGATION_PARAMS)
    axes: list[Axis] = []
    for name in ("axis_x", "axis_y"):
        if name in params:
            axis = params[name]
            if axis not in AXES:
                raise BadQuery(f"{name}: one of {', '.join(AXES)}")
            if axis in axes:
                raise BadQuery(f"{name}: same axis as axis_x")
            axes.append(axis)  # type: ignore[arg-type]
    if "axis_y" in params and "axis_x" not in params:
        raise BadQuery("axis_y: needs axis_x")
    return _filters(params), tuple(axes)


def parse_events(query: Mapping[str, str], max_page: int) -> EventFilter:
    """Filters of ``GET /api/v1/events``: times as for measurements (an event matches when it
    overlaps ``[since, until)``), ``cc``, ``asn``, ``kind``, ``status``, ``tier``, ``limit``."""
    params = _single(query, EVENT_PARAMS)
    filters = _filters({k: v for k, v in params.items() if k in FILTER_PARAMS})
    values: dict[str, str | int | None] = {
        "cc": filters.cc, "asn": filters.asn,
        # Events carry ISO 8601 times with a Z; compare in that form.
        "since": filters.since and filters.since.replace(" ", "T") + "Z",
        "until": filters.until and filters.until.replace(" ", "T") + "Z",
    }
    for name, choices in EVENT_CHOICES.items():
        if name in params:
            if params[name] not in choices:
                raise BadQuery(f"{name}: one of {', '.join(choices)}")
            values[name] = params[name]
    if "limit" in params:
        values["limit"] = _limit(params["limit"], max_page)
    return EventFilter(**values)  # type: ignore[arg-type]
