"""Hostile input at the ingest endpoint: never a 5xx, never a malformed row stored.

The real collector runs as a child process; hypothesis generates arbitrary JSON documents,
near-valid measurements with one field broken, and raw bytes. Every answer must be a 2xx or
4xx, and every stored row must satisfy the measurement rules.
"""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.store.body import unpack
from tests.helpers.collector_process import CollectorProcess, started

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
FIELDS = ["measurement_uid", "probe_cc", "probe_asn", "test_name", "measurement_start_time",
          "input", "test_keys"]


def valid(uid: str) -> dict[str, Any]:
    return {"measurement_uid": uid, "probe_cc": "KZ", "probe_asn": "AS9198",
            "test_name": "web_connectivity",
            "measurement_start_time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "input": "https://vlast.kz/",
            "test_keys": {"analysis": {"verdict": "blocked", "layer": "tls",
                                       "mechanism": "timeout"}}}


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CollectorProcess,
                                                                           str]]:
    with started(tmp_path_factory.mktemp("hostile"),
                 "limits: {rate_per_minute: 1000000, max_body_bytes: 65536}\n",
                 "fuzz") as collector:
        yield collector


def post(base: str, body: bytes, token: str | None) -> int:
    request = urllib.request.Request(base + "/api/v1/measurements", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(document=JSON)
def test_arbitrary_json_is_rejected_cleanly(collector: tuple[CollectorProcess, str],
                                            document: object) -> None:
    process, token = collector
    status = post(process.base, json.dumps(document).encode(), token)
    assert status < 500
    assert status in (200, 400)


@FUZZ
@given(field=st.sampled_from(FIELDS), value=JSON, uid=st.from_regex(r"[a-z0-9]{12}",
                                                                      fullmatch=True))
def test_one_broken_field(collector: tuple[CollectorProcess, str], field: str, value: object,
                          uid: str) -> None:
    process, token = collector
    document = valid("fz" + uid)
    document[field] = value
    assert post(process.base, json.dumps(document).encode(), token) < 500


@FUZZ
@given(raw=st.binary(max_size=300))
def test_raw_bytes(collector: tuple[CollectorProcess, str], raw: bytes) -> None:
    process, token = collector
    assert post(process.base, raw, token) in (200, 400)


def test_size_depth_type_and_auth_errors(collector: tuple[CollectorProcess, str]) -> None:
    process, token = collector
    good = json.dumps(valid("good-one-000001")).encode()
    assert post(process.base, good, None) == 401
    assert post(process.base, good, "kz_not-a-real-token") == 403
    assert post(process.base, b"{" * 10 + b"x" * 70000, token) == 413
    deep: Any = "leaf"
    for _ in range(200):
        deep = [deep]
    deep_document = valid("deep-one-000001")
    deep_document["test_keys"] = {"x": deep}
    assert post(process.base, json.dumps(deep_document).encode(), token) == 400
    wrong = valid("wrong-type-0001")
    wrong["probe_cc"] = 42
    assert post(process.base, json.dumps(wrong).encode(), token) == 400
    assert post(process.base, good, token) == 200


def test_every_stored_row_is_well_formed(collector: tuple[CollectorProcess, str]) -> None:
    process, _ = collector
    with sqlite3.connect(process.database) as db:
        rows = db.execute("SELECT uid, probe_cc, probe_asn, test_name, start_time, body "
                          "FROM measurements").fetchall()
    assert rows, "the suite stored at least the valid measurement"
    for uid, cc, asn, test_name, start, body in rows:
        assert re.fullmatch(r"[A-Z]{2}", cc)
        assert re.fullmatch(r"AS\d+", asn)
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", start)
        document = json.loads(unpack(body))
        assert document["measurement_uid"] == uid
        assert document["test_name"] == test_name
        assert isinstance(document["test_keys"], dict)
