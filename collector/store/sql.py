"""The SQL both stores run: every query written once, with a small dialect for what differs.

SQLite and PostgreSQL agree on almost all of the SQL the stores need (``ON CONFLICT ... DO
UPDATE``, ``excluded``, row-value comparisons, ``NULLS LAST``). What differs is small and lives
in ``Dialect``:

* placeholders: texts here are written with ``?``; PostgreSQL's ``$1, $2, ...`` are produced
  by ``Dialect.text`` once, at import;
* times: SQLite keeps ``"YYYY-MM-DD HH:MM:SS"`` text, PostgreSQL a ``timestamp``, so a time
  parameter goes through ``Dialect.time`` and the day/hour axes are spelled per dialect;
* JSON list membership (an event's ``asns``): ``json_each`` against ``jsonb ?``.

A conditional write (revoke a token, take a lease) tells whether it changed a row by its row
count on both: ``cursor.rowcount`` in SQLite, the command status (``"UPDATE 1"``) in asyncpg.

``Statements`` holds the finished texts for one dialect; each store builds its own once
(``SQLITE``, ``POSTGRES`` in the store modules). Column names come from constants, never from a
request; every value is a parameter.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from collector.store.interface import (
    FILTER_COLUMNS,
    MEASUREMENT_COLUMNS,
    VERDICTS,
    Axis,
    EventFilter,
    Filters,
    StoredMeasurement,
    target_key,
)

# Event columns in the order both stores write and read them; the JSON ones are text.
EVENT_COLUMNS = ("id", "kind", "tier", "status", "start", "end", "updated_at", "cc", "asns",
                 "targets", "mechanism", "probes", "evidence")
JSON_COLUMNS = ("asns", "targets", "evidence")
LIST_COLUMNS = tuple(c for c in MEASUREMENT_COLUMNS if c != "body")


def event_values(event: dict[str, Any]) -> tuple[Any, ...]:
    """An event's row, in ``EVENT_COLUMNS`` order (lists and evidence as compact JSON)."""
    return tuple(json.dumps(event[c], ensure_ascii=False, separators=(",", ":"))
                 if c in JSON_COLUMNS else event[c] for c in EVENT_COLUMNS)


def event_document(row: Any) -> dict[str, Any]:
    """The event as the API shows it, from a row of either store."""
    event = {c: row[c] for c in EVENT_COLUMNS}
    for column in JSON_COLUMNS:
        event[column] = json.loads(event[column])
    return event


@dataclass(frozen=True)
class Dialect:
    """What SQLite and PostgreSQL spell differently."""

    name: str
    numbered: bool  # ``$1`` placeholders (PostgreSQL) instead of ``?`` (SQLite)
    time: Callable[[str], Any]  # an interface time string -> the database's parameter
    day: str  # the UTC day of time column ``{t}`` as ``"YYYY-MM-DD"``
    hour: str  # its hour as ``"YYYY-MM-DD HH:00:00"``
    json_has: Callable[[str, str], str]  # (column, placeholder) -> "JSON list has value"
    axes: dict[str, str] = field(init=False)  # axis -> expression over ``measurements``
    rollup_axes: dict[str, str] = field(init=False)  # axis -> expression over ``rollups``

    def __post_init__(self) -> None:
        axes = {"day": self.day.format(t="start_time"), "hour": self.hour.format(t="start_time"),
                "cc": "probe_cc", "asn": "probe_asn", "domain": "domain", "input": "input",
                "test_name": "test_name", "verdict": "verdict"}
        object.__setattr__(self, "axes", axes)
        # "" stands for none in a rollup's key.
        rollup_axes = {"day": self.day.format(t="period"), "hour": self.hour.format(t="period"),
                       "cc": "probe_cc", "asn": "probe_asn", "domain": "nullif(domain, '')",
                       "input": "nullif(input, '')", "test_name": "test_name",
                       "verdict": "nullif(verdict, '')"}
        object.__setattr__(self, "rollup_axes", rollup_axes)

    def text(self, query: str) -> str:
        """``query`` with its ``?`` placeholders in this dialect's style."""
        if not self.numbered:
            return query
        parts = query.split("?")
        return parts[0] + "".join(f"${i}{p}" for i, p in enumerate(parts[1:], start=1))

    def params(self) -> Params:
        return Params(self)


class Params:
    """Collects a built query's parameters and hands out placeholders in the dialect's style."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.values: list[Any] = []

    def add(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}" if self.dialect.numbered else "?"

    def time(self, value: str) -> str:
        return self.add(self.dialect.time(value))


def _matches(column: str, value: str | tuple[str, ...] | None, params: Params) -> str | None:
    """``column = v`` for one value, ``column IN (...)`` for several, a false clause for an
    empty tuple (a category no listed input has), None for no filter."""
    if value is None:
        return None
    values = (value,) if isinstance(value, str) else tuple(value)
    if not values:
        return "1 = 0"
    if len(values) == 1:
        return f"{column} = {params.add(values[0])}"
    return f"{column} IN ({', '.join(params.add(v) for v in values)})"


def where(filters: Filters, params: Params, after: tuple[str, str] | None = None) -> str:
    """``WHERE ...`` (or "") for the filters and, for keyset pagination, rows after a cursor."""
    clauses = []
    if filters.since is not None:
        clauses.append(f"start_time >= {params.time(filters.since)}")
    if filters.until is not None:
        clauses.append(f"start_time < {params.time(filters.until)}")
    for name, column in FILTER_COLUMNS.items():
        clause = _matches(column, getattr(filters, name), params)
        if clause:
            clauses.append(clause)
    if after is not None:
        start, uid = after
        clauses.append(f"(start_time, uid) < ({params.time(start)}, {params.add(uid)})")
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def count_expressions() -> str:
    """``count(*)`` and one conditional count per verdict, named ``<verdict>_count``."""
    parts = ["count(*) AS measurement_count"]
    parts += [f"sum(CASE WHEN verdict = '{v}' THEN 1 ELSE 0 END) AS {v}_count"
              for v in VERDICTS]
    return ", ".join(parts)


def list_query(filters: Filters, params: Params, after: tuple[str, str] | None,
               limit: int) -> str:
    """A page of measurements without their bodies, newest first."""
    return (f"SELECT {','.join(LIST_COLUMNS)} FROM measurements {where(filters, params, after)} "
            f"ORDER BY start_time DESC, uid DESC LIMIT {params.add(limit)}")


def _grouped(axis_sql: dict[str, str], axes: tuple[Axis, ...], counts: str, source: str,
             where_: str, params: Params, limit: int) -> str:
    select = [f"{axis_sql[a]} AS {a}" for a in axes]
    group = f"GROUP BY {', '.join(axis_sql[a] for a in axes)}" if axes else ""
    # NULLS LAST spelled out: SQLite and PostgreSQL disagree on the default.
    order = (f"ORDER BY {', '.join(axis_sql[a] + ' NULLS LAST' for a in axes)}"
             if axes else "")
    columns = ", ".join([*select, counts])
    return f"SELECT {columns} FROM {source} {where_} {group} {order} LIMIT {params.add(limit)}"


def aggregate_query(filters: Filters, axes: tuple[Axis, ...], params: Params,
                    limit: int) -> str:
    """GROUP BY the axes (expressions from the dialect), ordered by axis values.

    Answered from the rollup tables when they hold what the question needs (``rollup_plan``),
    else by scanning ``measurements``; both give the same rows."""
    plan = rollup_plan(filters, axes)
    if plan is not None:
        return rollup_query(plan, filters, axes, params, limit)
    return _grouped(params.dialect.axes, axes, count_expressions(), "measurements",
                    where(filters, params), params, limit)


# --- rollups -------------------------------------------------------------------------------
#
# Rollup tables count measurements per period x country x network x test x verdict, the fine
# ones also per input and domain (the domain is a function of the input, so keeping it costs
# no rows; with the input every axis and filter can be answered). The coarse ones, without
# input and domain, are about a hundred times smaller and answer every question that neither
# groups nor filters by them. All are kept in the transaction that stores the measurements,
# counting only rows newly stored (a retried batch adds nothing).
#
# An aggregation whose time bounds fall on whole hours is answered from the rollups: its range
# is cut into whole months (when no axis is the day or hour), whole days (when none is the
# hour) and the hours at its edges, each read from the table of its period and summed
# (``rollup_plan``); bounds inside an hour need each measurement's own time, so they scan the
# measurements. ``period`` is the period's first second; a missing input, domain or verdict is
# "" in the key (a primary key cannot hold NULL).

ROLLUP_KEY = ("period", "probe_cc", "probe_asn", "test_name", "input", "domain", "verdict")
COARSE_KEY = ("period", "probe_cc", "probe_asn", "test_name", "verdict")
_ROLLUP_FILTERS = {"cc": "probe_cc", "asn": "probe_asn", "test_name": "test_name",
                   "input": "input", "domain": "domain", "verdict": "verdict"}


@dataclass(frozen=True)
class Rollup:
    """One rollup table: its period ("hour", "day" or "month") and whether it keeps the input
    and the domain."""

    table: str
    period: str
    fine: bool

    @property
    def key(self) -> tuple[str, ...]:
        return ROLLUP_KEY if self.fine else COARSE_KEY


ROLLUPS = (Rollup("rollups_hourly", "hour", True), Rollup("rollups_daily", "day", True),
           Rollup("rollups_monthly", "month", True),
           Rollup("rollups_hourly_coarse", "hour", False),
           Rollup("rollups_daily_coarse", "day", False))
ROLLUP_TABLES = tuple(r.table for r in ROLLUPS)
# Added by the stores' migration 7 (the first two by migration 4 on SQLite, 3 on PostgreSQL).
ROLLUPS_OF_VERSION_7 = ("rollups_monthly", "rollups_hourly_coarse", "rollups_daily_coarse")
_BY_TABLE = {r.table: r for r in ROLLUPS}


def period_of(time: str, period: str) -> str:
    """The first second of the hour, day or month of ``time`` (``"YYYY-MM-DD HH:MM:SS"``)."""
    if period == "hour":
        return time[:13] + ":00:00"
    if period == "day":
        return time[:10] + " 00:00:00"
    return time[:7] + "-01 00:00:00"


def _next(start: str, period: str) -> str:
    """The start of the period after the one starting at ``start``."""
    moment = datetime.strptime(start, "%Y-%m-%d %H:%M:%S")
    if period == "day":
        moment += timedelta(days=1)
    elif moment.month == 12:
        moment = moment.replace(year=moment.year + 1, month=1)
    else:
        moment = moment.replace(month=moment.month + 1)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


Piece = tuple[Rollup, str | None, str | None]


def _pieces(since: str | None, until: str | None, levels: list[Rollup]) -> list[Piece]:
    """[since, until) as whole periods of ``levels[0]`` and, at its edges, of the finer
    levels after it (the last level is hours: the bounds are whole hours)."""
    level, finer = levels[0], levels[1:]
    if not finer:
        return [(level, since, until)]
    first = None
    if since is not None:
        first = period_of(since, level.period)
        if first != since:
            first = _next(first, level.period)
    last = None if until is None else period_of(until, level.period)
    if first is not None and last is not None and first >= last:
        return _pieces(since, until, finer)
    out: list[Piece] = [(level, first, last)]
    if since is not None and first is not None and since < first:
        out += _pieces(since, first, finer)
    if until is not None and last is not None and last < until:
        out += _pieces(last, until, finer)
    return out


def rollup_plan(filters: Filters, axes: tuple[Axis, ...]) -> list[Piece] | None:
    """The rollup tables and time ranges whose sum answers exactly, coarsest first, or None
    when only the measurements can (a time bound inside an hour)."""
    bounds = [t for t in (filters.since, filters.until) if t is not None]
    if not all(t.endswith(":00:00") for t in bounds):
        return None
    fine = (any(a in ("input", "domain") for a in axes)
            or filters.input is not None or filters.domain is not None)
    longest = "hour" if "hour" in axes else "day" if "day" in axes else "month"
    order = ("month", "day", "hour")
    levels = [r for r in ROLLUPS if r.fine == fine
              and order.index(r.period) >= order.index(longest)]
    levels.sort(key=lambda r: order.index(r.period))
    return _pieces(filters.since, filters.until, levels)


def rollup_query(plan: list[Piece], filters: Filters, axes: tuple[Axis, ...], params: Params,
                 limit: int) -> str:
    """The aggregation summed over the plan's pieces (one table read directly)."""
    if len(plan) == 1:
        rollup, since, until = plan[0]
        return _grouped(params.dialect.rollup_axes, axes, rollup_count_expressions(),
                        rollup.table, rollup_where(replace(filters, since=since, until=until),
                                                   params), params, limit)
    parts = []
    for rollup, since, until in plan:
        clause = rollup_where(replace(filters, since=since, until=until), params)
        parts.append(f"SELECT {', '.join(rollup.key)}, count FROM {rollup.table} {clause}")
    return _grouped(params.dialect.rollup_axes, axes, rollup_count_expressions(),
                    f"({' UNION ALL '.join(parts)}) AS pieces", "", params, limit)


def rollup_where(filters: Filters, params: Params) -> str:
    clauses = []
    if filters.since is not None:
        clauses.append(f"period >= {params.time(filters.since)}")
    if filters.until is not None:
        clauses.append(f"period < {params.time(filters.until)}")
    for name, column in _ROLLUP_FILTERS.items():
        clause = _matches(column, getattr(filters, name), params)
        if clause:
            clauses.append(clause)
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def rollup_count_expressions() -> str:
    parts = ["sum(count) AS measurement_count"]
    parts += [f"sum(CASE WHEN verdict = '{v}' THEN count ELSE 0 END) AS {v}_count"
              for v in VERDICTS]
    return ", ".join(parts)


def _key_rest(rollup: Rollup, rest: tuple[str, ...]) -> tuple[str, ...]:
    """(cc, asn, test, input, domain) as the rollup keeps it (the coarse ones: cc, asn, test)."""
    return rest if rollup.fine else rest[:3]


def rollup_increments(rows: list[StoredMeasurement]) -> dict[str, list[tuple[Any, ...]]]:
    """Per rollup table, its key and the count of newly stored rows, sorted by key so
    concurrent writers take row locks in one order.

    Each row's hourly key is made once and the other tables' keys from it, each table's keys
    counted by ``Counter`` in C: every stored row passes here on the event loop, and a
    counter's ``+= 1`` per row and table cost a third more."""
    hourly = [(period_of(row.start_time, "hour"), row.probe_cc, row.probe_asn, row.test_name,
               row.input or "", row.domain or "", row.verdict or "") for row in rows]
    fine = {"hour": hourly,
            "day": [(period_of(k[0], "day"), *k[1:]) for k in hourly],
            "month": [(period_of(k[0], "month"), *k[1:]) for k in hourly]}
    out: dict[str, list[tuple[Any, ...]]] = {}
    for rollup in ROLLUPS:
        keys: Sequence[tuple[str, ...]] = fine[rollup.period] if rollup.fine else \
            [(k[0], k[1], k[2], k[3], k[6]) for k in fine[rollup.period]]  # COARSE_KEY
        out[rollup.table] = [(*key, n) for key, n in sorted(Counter(keys).items())]
    return out


def latest_per_target(rows: list[StoredMeasurement]) -> list[StoredMeasurement]:
    """Each target's latest row of a batch (by start time, then uid), sorted by target key:
    ``target_state`` keeps the latest anyway, so one upsert per target instead of one per row,
    taken in one order by concurrent writers."""
    latest: dict[tuple[str, str, str, str], StoredMeasurement] = {}
    for row in rows:
        key = (row.probe_cc, row.probe_asn, row.test_name, target_key(row.input))
        found = latest.get(key)
        if found is None or (row.start_time, row.uid) > (found.start_time, found.uid):
            latest[key] = row
    return [latest[key] for key in sorted(latest)]


def rollup_moves(start_time: str, rest: tuple[str, ...], old: str | None,
                 new: str | None) -> dict[str, list[tuple[Any, ...]]]:
    """Per rollup table, the increments that move one stored measurement (``start_time``; ``rest``
    = cc, asn, test, input or "", domain or "") from verdict ``old`` to ``new``: -1, then +1
    (a re-analysis, ``replace_analysis``). Empty when the verdict is the same."""
    if (old or "") == (new or ""):
        return {table: [] for table in ROLLUP_TABLES}
    out: dict[str, list[tuple[Any, ...]]] = {}
    for rollup in ROLLUPS:
        key = (period_of(start_time, rollup.period), *_key_rest(rollup, rest))
        out[rollup.table] = [(*key, old or "", -1), (*key, new or "", 1)]
    return out


def drop_empty_rollup(table: str) -> str:
    """Delete a rollup row whose count a re-analysis brought to zero (so no group of zero
    measurements is answered)."""
    key = _BY_TABLE[table].key
    return f"DELETE FROM {table} WHERE {' AND '.join(f'{c} = ?' for c in key)} AND count <= 0"


def rollup_fill(table: str, period: str) -> str:
    """The rollups of measurements already stored (a migration); ``period`` is the dialect's
    expression of the period's start from ``start_time``."""
    return (f"INSERT INTO {table} ({','.join(ROLLUP_KEY)}, count) "
            f"SELECT {period}, probe_cc, probe_asn, test_name, coalesce(input, ''), "
            f"coalesce(domain, ''), coalesce(verdict, ''), count(*) FROM measurements "
            f"GROUP BY 1, 2, 3, 4, 5, 6, 7")


def rollup_refill(table: str, source: str, period: str) -> str:
    """Fill a rollup table from a finer one already kept (a migration, cheaper than from the
    measurements); ``period`` is the dialect's expression of its period from ``period``."""
    key = _BY_TABLE[table].key
    columns = ", ".join(key[1:])
    return (f"INSERT INTO {table} ({', '.join(key)}, count) "
            f"SELECT {period}, {columns}, sum(count) FROM {source} "
            f"GROUP BY {', '.join(str(i) for i in range(1, len(key) + 1))}")


def upsert_rollup(table: str) -> str:
    key = ",".join(_BY_TABLE[table].key)
    values = ", ".join("?" * (len(_BY_TABLE[table].key) + 1))
    return (f"INSERT INTO {table} ({key}, count) VALUES ({values}) ON CONFLICT ({key}) "
            f"DO UPDATE SET count = {table}.count + excluded.count")


def events_query(query: EventFilter, params: Params) -> str:
    """Events matching the filter, latest start first; an event overlaps ``since``/``until``."""
    clauses: list[str] = []
    if query.since is not None:
        clauses.append(f'("end" IS NULL OR "end" >= {params.add(query.since)})')
    if query.until is not None:
        clauses.append(f"start < {params.add(query.until)}")
    for column, value in (("cc", query.cc), ("kind", query.kind),
                          ("status", query.status), ("tier", query.tier)):
        if value is not None:
            clauses.append(f"{column} = {params.add(value)}")
    if query.asn is not None:
        clauses.append(params.dialect.json_has("asns", params.add(query.asn)))
    where_ = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    return f"SELECT * FROM events {where_} ORDER BY start DESC, id LIMIT {params.add(query.limit)}"


def _quoted(columns: tuple[str, ...]) -> str:
    return ",".join(f'"{c}"' for c in columns)


_UPSERT_EVENT = (
    f"INSERT INTO events ({_quoted(EVENT_COLUMNS)}) "
    f"VALUES ({','.join('?' * len(EVENT_COLUMNS))}) ON CONFLICT (id) DO UPDATE SET "
    + ",".join(f'"{c}" = excluded."{c}"' for c in EVENT_COLUMNS if c != "id"))

UPSERT_TARGET = """
INSERT INTO target_state (probe_cc, probe_asn, test_name, target, uid, start_time, verdict,
                          layer, mechanism)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (probe_cc, probe_asn, test_name, target) DO UPDATE SET
    uid = excluded.uid, start_time = excluded.start_time, verdict = excluded.verdict,
    layer = excluded.layer, mechanism = excluded.mechanism
WHERE (excluded.start_time, excluded.uid) > (target_state.start_time, target_state.uid)
"""
_UPSERT_PROBE = """
INSERT INTO probes (probe_id, first_seen, last_seen, sent_at, queue_depth, software_version)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (probe_id) DO UPDATE SET
    last_seen = excluded.last_seen, sent_at = excluded.sent_at,
    queue_depth = excluded.queue_depth,
    software_version = coalesce(excluded.software_version, probes.software_version)
WHERE excluded.last_seen >= probes.last_seen
"""
_ACQUIRE_LEASE = """
INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
WHERE leases.holder = excluded.holder OR leases.expires_at <= ?
"""


@dataclass(frozen=True)
class Statements:
    """The fixed statements of both stores, in one dialect's placeholders."""

    insert_heartbeat: str
    upsert_probe: str
    probes: str
    upsert_target: str
    latest_by_target: str
    target_verdicts: str
    upsert_token: str
    revoke_token: str
    probe_for_token: str
    tokens: str
    acquire_lease: str
    release_lease: str
    upsert_event: str
    load_state: str
    save_state: str
    upsert_hourly: str
    upsert_daily: str
    upsert_rollups: dict[str, str]  # table -> its upsert (``ROLLUPS``)
    add_total: str
    total: str

    @classmethod
    def of(cls, dialect: Dialect) -> Statements:
        texts = {
            "insert_heartbeat": (
                "INSERT INTO heartbeats (probe_id, sent_at, received_at, body, queue_depth, "
                "software_version) VALUES (?, ?, ?, ?, ?, ?)"),
            "upsert_probe": _UPSERT_PROBE,
            "probes": (
                "SELECT probe_id, first_seen, last_seen, sent_at, queue_depth, "
                "software_version FROM probes ORDER BY probe_id"),
            "upsert_target": UPSERT_TARGET,
            "latest_by_target": (
                "SELECT probe_cc, probe_asn, test_name, nullif(target, '') AS input, verdict, "
                "layer, mechanism, start_time FROM target_state "
                "ORDER BY target, probe_cc, probe_asn, test_name"),
            "target_verdicts": (
                "SELECT probe_cc, probe_asn, test_name, target, verdict FROM target_state"),
            "upsert_token": (
                "INSERT INTO tokens (probe_id, token_hash, created_at) VALUES (?, ?, ?) "
                "ON CONFLICT (probe_id) DO UPDATE SET token_hash = excluded.token_hash, "
                "created_at = excluded.created_at, revoked_at = NULL"),
            "revoke_token": (
                "UPDATE tokens SET revoked_at = ? WHERE probe_id = ? AND revoked_at IS NULL"),
            "probe_for_token": "SELECT probe_id, revoked_at FROM tokens WHERE token_hash = ?",
            "tokens": "SELECT probe_id, created_at, revoked_at FROM tokens ORDER BY probe_id",
            "acquire_lease": _ACQUIRE_LEASE,
            "release_lease": "DELETE FROM leases WHERE name = ? AND holder = ?",
            "upsert_event": _UPSERT_EVENT,
            "load_state": "SELECT body FROM detection_state WHERE name = ?",
            "save_state": (
                "INSERT INTO detection_state (name, body, saved_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET body = excluded.body, "
                "saved_at = excluded.saved_at"),
            "upsert_hourly": upsert_rollup("rollups_hourly"),
            "upsert_daily": upsert_rollup("rollups_daily"),
            # The count of stored measurements, in a few rows so concurrent writers need
            # not wait for each other's commit on one row; their sum is the total.
            "add_total": (
                "INSERT INTO measurement_totals (shard, count) VALUES (?, ?) "
                "ON CONFLICT (shard) DO UPDATE SET count = measurement_totals.count "
                "+ excluded.count"),
            "total": "SELECT coalesce(sum(count), 0) FROM measurement_totals",
        }
        return cls(upsert_rollups={t: dialect.text(upsert_rollup(t)) for t in ROLLUP_TABLES},
                   **{k: dialect.text(v) for k, v in texts.items()})
