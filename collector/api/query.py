"""Query-string parsing for the read API: filters, cursors, axes. Pure; every error names its key.

The same filters serve ``/api/v1/measurements`` and ``/api/v1/aggregation``. Unknown or repeated
parameters are errors, so a typo (``?country=KG``) does not silently return everything; several
values of one filter are separated by commas (``probe_cc=KG,KZ``), as in OONI's API, whose
parameter and axis names are accepted beside ours.
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
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.events import kinds
from collector.store import (
    AXES,
    COUNT_COLUMNS,
    TIME_FORMAT,
    VERDICTS,
    Axis,
    EventFilter,
    Filters,
)

FILTER_PARAMS = ("since", "until", "cc", "asn", "test_name", "input", "domain")
# OONI's names (api.ooni.io/apidocs) beside the short ones; a response row uses OONI's names
# for columns (probe_cc, probe_asn), so a researcher can send back what they read.
ALIASES = {"probe_cc": "cc", "probe_asn": "asn"}
READ_FILTERS = (*FILTER_PARAMS, "probe_cc", "probe_asn", "category_code", "verdict",
                "measurement_start_day")
LIST_PARAMS = (*READ_FILTERS, "limit", "cursor", "full", "format")
AGGREGATION_PARAMS = (*READ_FILTERS, "axis_x", "axis_y", "format")
EVENT_PARAMS = ("since", "until", "cc", "probe_cc", "asn", "probe_asn", "kind", "status",
                "tier", "limit")
# The status page, event pages and the Atom feed (collector.handlers).
PAGE_PARAMS = ("lang",)
FEED_PARAMS = ("cc", "lang")
EVENT_CHOICES = {"kind": kinds.ALL,
                 "status": ("open", "closed"),
                 "tier": ("suspected", "likely", "confirmed")}
# Axis names: ours and OONI's (measurement_start_day, probe_cc, probe_asn, category_code).
AXIS_ALIASES = {"measurement_start_day": "day", "probe_cc": "cc", "probe_asn": "asn",
                "category_code": "input"}
AXIS_NAMES = (*AXES, *AXIS_ALIASES)
FORMATS = ("JSON", "CSV")
MAX_VALUES = 50
DEFAULT_PAGE = 100

# One definition per parameter, read by the parser below and by the OpenAPI document
# (collector.openapi), so the two cannot drift apart. ``pattern`` is what the parser accepts.
PARAMETERS: dict[str, dict[str, object]] = {
    "since": {"description": "Measurements that started at or after this time (UTC). A date, "
              "'YYYY-MM-DD HH:MM:SS' or ISO 8601 with a zone.", "example": "2024-05-01"},
    "until": {"description": "Measurements that started before this time (UTC).",
              "example": "2024-05-02T00:00:00Z"},
    "cc": {"description": "Country (ISO 3166-1 alpha-2); several separated by commas.",
           "example": "KG,KZ", "pattern": "^[A-Za-z]{2}(,[A-Za-z]{2})*$"},
    "probe_cc": {"description": "OONI's name for cc.", "example": "KG",
                 "pattern": "^[A-Za-z]{2}(,[A-Za-z]{2})*$"},
    "asn": {"description": "Network, as AS8449 or 8449; several separated by commas.",
            "example": "AS8449,AS9198",
            "pattern": "^(AS|as)?[0-9]{1,10}(,(AS|as)?[0-9]{1,10})*$"},
    "probe_asn": {"description": "OONI's name for asn.", "example": "AS9198",
                  "pattern": "^(AS|as)?[0-9]{1,10}(,(AS|as)?[0-9]{1,10})*$"},
    "test_name": {"description": "Test name; several separated by commas.",
                  "example": "web_connectivity", "pattern": "^[a-z0-9_]{2,30}(,[a-z0-9_]{2,30})*$"},
    "input": {"description": "Exact input (URL) measured.", "example": "https://kloop.kg/"},
    "domain": {"description": "Host name of the input; several separated by commas.",
               "example": "kloop.kg",
               "pattern": "^[A-Za-z0-9._-]{1,253}(,[A-Za-z0-9._-]{1,253})*$"},
    "category_code": {"description": "Citizen Lab category of the input (from the collector's "
                      "target lists), e.g. NEWS, HUMR; several separated by commas.",
                      "example": "NEWS", "pattern": "^[A-Z]{2,8}(,[A-Z]{2,8})*$"},
    "verdict": {"description": "Verdict of the measurement's analysis; several separated by "
                "commas.", "example": "blocked",
                "pattern": "^(" + "|".join(VERDICTS) + ")(,(" + "|".join(VERDICTS) + "))*$"},
    "measurement_start_day": {"description": "Measurements that started on this UTC day "
                              "(OONI's name); not with since/until.",
                              "example": "2024-05-01", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
    "limit": {"description": "Page size (1 to query.max_page_size, default 100).",
              "example": "50", "pattern": "^[0-9]+$"},
    "cursor": {"description": "The next_cursor of the previous page.",
               "example": "WyIyMDI0LTA1LTAxIDEyOjAwOjAwIiwidWlkLTEiXQ"},
    "full": {"description": "true to include each measurement document.", "example": "true",
             "enum": ["true", "false"]},
    "format": {"description": "JSON (default) or CSV (text/csv, one row per line).",
               "example": "CSV", "enum": [*FORMATS, *(f.lower() for f in FORMATS)]},
    "axis_x": {"description": "First grouping axis (ours or OONI's name; category_code groups "
               "by the inputs' categories).", "example": "measurement_start_day",
               "enum": list(AXIS_NAMES)},
    "axis_y": {"description": "Second grouping axis (needs axis_x).", "example": "probe_cc",
               "enum": list(AXIS_NAMES)},
    "kind": {"description": "Event kind (monitor_outage: Kuzot itself could not observe).",
             "example": "block", "enum": list(EVENT_CHOICES["kind"])},
    "status": {"description": "Event status.", "example": "open",
               "enum": list(EVENT_CHOICES["status"])},
    "tier": {"description": "Event tier.", "example": "likely",
             "enum": list(EVENT_CHOICES["tier"])},
}
# Events take one country and one network.
EVENT_PARAMETERS: dict[str, dict[str, object]] = {
    **PARAMETERS,
    **{name: {"description": "Country (ISO 3166-1 alpha-2).", "example": "KG",
              "pattern": "^[A-Za-z]{2}$"} for name in ("cc", "probe_cc")},
    **{name: {"description": "Network, as AS8449 or 8449.", "example": "AS8449",
              "pattern": "^(AS|as)?[0-9]{1,10}$"} for name in ("asn", "probe_asn")},
}
# fullmatch with ASCII classes: "\d" would take other scripts' digits and "$" a final newline.
_CC = re.compile(r"[A-Za-z]{2}")
_ASN = re.compile(r"(?:AS|as)?([1-9][0-9]{0,9}|0)")
_TEST = re.compile(r"[a-z0-9_]{2,30}")
_DOMAIN = re.compile(r"[A-Za-z0-9._-]{1,253}")
_COUNT = re.compile(r"[0-9]{1,9}")
_CATEGORY = re.compile(r"[A-Z]{2,8}")


class BadQuery(ValueError):
    """A query parameter is unknown, repeated or malformed; the message names it."""


@dataclass(frozen=True, slots=True)
class ListQuery:
    filters: Filters
    after: tuple[str, str] | None
    limit: int
    full: bool
    format: str = "JSON"


@dataclass(frozen=True, slots=True)
class AggregationQuery:
    filters: Filters
    axes: tuple[Axis, ...]  # store axes (category_code is grouped by input, then folded)
    names: tuple[str, ...]  # the axis names as asked, the keys of the result rows
    format: str = "JSON"

    @property
    def by_category(self) -> bool:
        return "category_code" in self.names


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
            raise BadQuery(f"{key}: given more than once (separate several values by commas)")
        out[key] = query[key]
    for alias, name in ALIASES.items():
        if alias in out:
            if name in out:
                raise BadQuery(f"{alias}: same filter as {name}; give one of them")
            out[name] = out.pop(alias)
    return out


def _documented(params: Mapping[str, str],
                table: Mapping[str, Mapping[str, object]] | None = None) -> None:
    """Every value within what PARAMETERS (the OpenAPI document) says: run after the precise
    checks, it enforces the document's patterns and choices too, so a value the document
    forbids can never be accepted, whatever the checks above become."""
    for key in params:
        value = params[key]
        spec = (table or PARAMETERS).get(key, {})
        pattern, choices = spec.get("pattern"), spec.get("enum")
        if isinstance(pattern, str) and not re.fullmatch(pattern.strip("^$"), value):
            raise BadQuery(f"{key}: {spec['description']}")
        if isinstance(choices, list) and value not in choices:
            raise BadQuery(f"{key}: one of {', '.join(map(str, choices))}")


def _values(params: dict[str, str], name: str) -> list[str]:
    values = params[name].split(",")
    if len(values) > MAX_VALUES:
        raise BadQuery(f"{name}: at most {MAX_VALUES} values")
    return values


def _one_or_many(values: list[str]) -> str | tuple[str, ...]:
    unique = tuple(dict.fromkeys(values))
    return unique[0] if len(unique) == 1 else unique


def _filters(params: dict[str, str],
             categories: Mapping[str, str] | None = None) -> Filters:
    values: dict[str, str | tuple[str, ...] | None] = {}
    for name in ("since", "until"):
        if name in params:
            values[name] = parse_time(params[name], name)
    if "measurement_start_day" in params:
        if "since" in params or "until" in params:
            raise BadQuery("measurement_start_day: not together with since or until")
        day = params["measurement_start_day"]
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", day):
            raise BadQuery("measurement_start_day: a date such as 2024-05-01")
        first = parse_time(day, "measurement_start_day")
        values["since"] = first
        start = datetime.strptime(first, TIME_FORMAT)
        try:
            values["until"] = (start + timedelta(days=1)).strftime(TIME_FORMAT)
        except OverflowError as exc:
            raise BadQuery("measurement_start_day: year out of range") from exc
    if "cc" in params:
        ccs = _values(params, "cc")
        if not all(_CC.fullmatch(c) for c in ccs):
            raise BadQuery("cc: two letters (ISO 3166-1 alpha-2), several separated by commas")
        values["cc"] = _one_or_many([c.upper() for c in ccs])
    if "asn" in params:
        asns = []
        for item in _values(params, "asn"):
            match = _ASN.fullmatch(item)
            if not match:
                raise BadQuery("asn: AS number such as AS8449 or 8449, several separated by "
                               "commas")
            asns.append(f"AS{int(match.group(1))}")
        values["asn"] = _one_or_many(asns)
    if "test_name" in params:
        names = _values(params, "test_name")
        if not all(_TEST.fullmatch(n) for n in names):
            raise BadQuery("test_name: 2-30 characters of [a-z0-9_], several separated by "
                           "commas")
        values["test_name"] = _one_or_many(names)
    inputs: set[str] | None = None
    if "input" in params:
        # PostgreSQL refuses NUL in text. One input: URLs may hold commas.
        if not 0 < len(params["input"]) <= 2048 or "\x00" in params["input"]:
            raise BadQuery("input: 1-2048 characters, no NUL")
        inputs = {params["input"]}
    if "category_code" in params:
        codes = _values(params, "category_code")
        if not all(_CATEGORY.fullmatch(c) for c in codes):
            raise BadQuery("category_code: Citizen Lab codes such as NEWS or HUMR, several "
                           "separated by commas")
        listed = {url for url, code in (categories or {}).items() if code in codes}
        inputs = listed if inputs is None else inputs & listed
    if inputs is not None:
        values["input"] = _one_or_many(sorted(inputs)) if inputs else ()
    if "domain" in params:
        domains = _values(params, "domain")
        if not all(_DOMAIN.fullmatch(d) for d in domains):
            raise BadQuery("domain: a host name, several separated by commas")
        values["domain"] = _one_or_many([d.lower().rstrip(".") for d in domains])
    if "verdict" in params:
        verdicts = _values(params, "verdict")
        if not all(v in VERDICTS for v in verdicts):
            raise BadQuery(f"verdict: one of {', '.join(VERDICTS)}, several separated by commas")
        values["verdict"] = _one_or_many(verdicts)
    since, until = values.get("since"), values.get("until")
    if isinstance(since, str) and isinstance(until, str) and since >= until:
        raise BadQuery("until: must be after since")
    return Filters(**values)  # type: ignore[arg-type]


def _format(params: dict[str, str]) -> str:
    value = params.get("format", "JSON").upper()
    if value not in FORMATS:
        raise BadQuery("format: JSON or CSV")
    return value


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


def parse_list(query: Mapping[str, str], max_page: int,
               categories: Mapping[str, str] | None = None) -> ListQuery:
    params = _single(query, LIST_PARAMS)
    limit = DEFAULT_PAGE
    if "limit" in params:
        limit = _limit(params["limit"], max_page)
    full = params.get("full", "false")
    if full not in ("true", "false"):
        raise BadQuery("full: true or false")
    after = decode_cursor(params["cursor"]) if "cursor" in params else None
    listed = ListQuery(_filters(params, categories), after, limit, full == "true",
                       _format(params))
    _documented(query)
    return listed


def parse_aggregation(query: Mapping[str, str],
                      categories: Mapping[str, str] | None = None) -> AggregationQuery:
    params = _single(query, AGGREGATION_PARAMS)
    axes: list[Axis] = []
    names: list[str] = []
    for name in ("axis_x", "axis_y"):
        if name in params:
            asked = params[name]
            if asked not in AXIS_NAMES:
                raise BadQuery(f"{name}: one of {', '.join(AXIS_NAMES)}")
            axis = AXIS_ALIASES.get(asked, asked)
            if axis in axes:
                raise BadQuery(f"{name}: same axis as axis_x")
            axes.append(axis)  # type: ignore[arg-type]
            names.append(asked)
    if "axis_y" in params and "axis_x" not in params:
        raise BadQuery("axis_y: needs axis_x")
    aggregated = AggregationQuery(_filters(params, categories), tuple(axes), tuple(names),
                                  _format(params))
    _documented(query)
    return aggregated


def fold_categories(rows: list[dict[str, Any]], query: AggregationQuery,
                    categories: Mapping[str, str]) -> list[dict[str, Any]]:
    """Rows keyed by the axis names asked; with a category_code axis the per-input rows are
    summed per category (null for inputs in no list)."""
    renamed = []
    for row in rows:
        out = {name: row[axis] for axis, name in zip(query.axes, query.names, strict=True)}
        if query.by_category:
            value = out["category_code"]
            out["category_code"] = categories.get(value) if isinstance(value, str) else None
        out.update({k: v for k, v in row.items() if k in COUNT_COLUMNS})
        renamed.append(out)
    if not query.by_category:
        return renamed
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in renamed:
        key = tuple(row[name] for name in query.names)
        if key in merged:
            for column in COUNT_COLUMNS:
                merged[key][column] += row[column]
        else:
            merged[key] = dict(row)
    return [merged[k] for k in sorted(merged, key=lambda k: tuple((v is None, v or "")
                                                                   for v in k))]


def parse_events(query: Mapping[str, str], max_page: int) -> EventFilter:
    """Filters of ``GET /api/v1/events``: times as for measurements (an event matches when it
    overlaps ``[since, until)``), ``cc``, ``asn``, ``kind``, ``status``, ``tier``, ``limit``."""
    params = _single(query, EVENT_PARAMS)
    for name in ("cc", "asn"):
        if "," in params.get(name, ""):
            raise BadQuery(f"{name}: one value")
    filters = _filters({k: v for k, v in params.items() if k in FILTER_PARAMS})
    values: dict[str, str | int | None] = {
        "cc": filters.cc if isinstance(filters.cc, str) else None,
        "asn": filters.asn if isinstance(filters.asn, str) else None,
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
    _documented(query, EVENT_PARAMETERS)
    return EventFilter(**values)  # type: ignore[arg-type]
