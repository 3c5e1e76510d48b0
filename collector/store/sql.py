"""SQL text shared by both stores: WHERE clauses from filters, keyset pagination, counts.

Only the placeholder style and the time-bucket expressions differ between SQLite (``?``) and
PostgreSQL (``$1``); everything here is parameterised, and column names come from constants,
never from the request.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collector.store import FILTER_COLUMNS, VERDICTS, Axis, Filters


class Params:
    """Collects query parameters and hands out placeholders in the store's style."""

    def __init__(self, style: str, convert_time: Callable[[str], Any] = str) -> None:
        self.style = style
        self.values: list[Any] = []
        self.convert_time = convert_time

    def add(self, value: Any) -> str:
        self.values.append(value)
        return "?" if self.style == "qmark" else f"${len(self.values)}"

    def time(self, value: str) -> str:
        return self.add(self.convert_time(value))


def where(filters: Filters, params: Params, after: tuple[str, str] | None = None) -> str:
    """``WHERE ...`` (or "") for the filters and, for keyset pagination, rows after a cursor."""
    clauses = []
    if filters.since is not None:
        clauses.append(f"start_time >= {params.time(filters.since)}")
    if filters.until is not None:
        clauses.append(f"start_time < {params.time(filters.until)}")
    for name, column in FILTER_COLUMNS.items():
        value = getattr(filters, name)
        if value is None:
            continue
        values = (value,) if isinstance(value, str) else tuple(value)
        if not values:
            clauses.append("1 = 0")
        elif len(values) == 1:
            clauses.append(f"{column} = {params.add(values[0])}")
        else:
            clauses.append(f"{column} IN ({', '.join(params.add(v) for v in values)})")
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


def aggregate_query(filters: Filters, axes: tuple[Axis, ...], params: Params,
                    axis_sql: dict[str, str], limit: int) -> str:
    """GROUP BY the axes (expressions from ``axis_sql``), ordered by axis values."""
    select = [f"{axis_sql[a]} AS {a}" for a in axes]
    group = f"GROUP BY {', '.join(axis_sql[a] for a in axes)}" if axes else ""
    # NULLS LAST spelled out: SQLite and PostgreSQL disagree on the default.
    order = (f"ORDER BY {', '.join(axis_sql[a] + ' NULLS LAST' for a in axes)}"
             if axes else "")
    columns = ", ".join([*select, count_expressions()])
    return (f"SELECT {columns} FROM measurements {where(filters, params)} {group} {order} "
            f"LIMIT {params.add(limit)}")
