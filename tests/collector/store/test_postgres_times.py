"""PostgreSQL's stored times are read by slicing: the same datetime as ``strptime``, or the
same refusal, for any text."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.store import TIME_FORMAT
from collector.store.postgres import _ts


def reference(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, TIME_FORMAT)
    except ValueError:
        return None


def ours(text: str) -> datetime | None:
    try:
        return _ts(text)
    except ValueError:
        return None


@given(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_every_canonical_time_reads_as_strptime_reads_it(moment: datetime) -> None:
    text = f"{moment.year:04d}-{moment:%m-%d %H:%M:%S}"
    assert ours(text) == reference(text) == moment.replace(microsecond=0)


@given(st.text(alphabet="0123456789-: T.x", min_size=15, max_size=21))
def test_any_other_text_reads_or_fails_as_strptime_does(text: str) -> None:
    assert ours(text) == reference(text)


@pytest.mark.parametrize("text", ["2024-02-30 00:00:00", "2024-13-01 00:00:00",
                                  "2024-05-01 24:00:00", "2024-05-01 12:3:04",
                                  "2024-05-01T12:03:04", "２０２４-05-01 12:03:04"])
def test_impossible_or_other_spellings_read_as_strptime_reads_them(text: str) -> None:
    assert ours(text) == reference(text)
