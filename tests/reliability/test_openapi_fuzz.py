"""schemathesis against the OpenAPI document the collector serves: never a 5xx, every answer
as documented, and every measurement it got stored is well formed.

The real collector runs as a child process; the document is loaded from its
``/api/v1/openapi.json``. schemathesis generates both schema-valid and schema-violating
requests (examples, coverage and fuzzing phases) with a bounded number of examples per
operation so the test stays quick. ``POST /api/v1/control`` is left out: it makes the
collector fetch the URL it is given, and generated URLs would leave loopback.

The retention window and future skew are widened for this collector so that a generated
start time (any year) is not simply rejected as too old or in the future: the fuzzer then
reaches the storage path, which is what the stored-row check is about.
"""

from __future__ import annotations

import json
import re
import sqlite3
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case, checks

from collector.api.openapi import document
from collector.store import VERDICTS
from collector.store.body import unpack
from tests.helpers.collector_process import CollectorProcess, started

MAX_EXAMPLES = 25
_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_LABEL = re.compile(r"[a-z0-9_]{1,32}")
# Requests the document allows but the collector refuses are fine (a start time outside the
# retention window, two equal aggregation axes, an unparsable heartbeat time): schema-valid is
# not the same as acceptable, so schemathesis' positive_data_acceptance check is not run.
# Requests the document forbids must be refused (negative_data_rejection).


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CollectorProcess,
                                                                           str]]:
    with started(tmp_path_factory.mktemp("schemathesis"),
                 "limits: {rate_per_minute: 100000000, max_body_bytes: 262144,\n"
                 "         retention: 730000d, future_skew: 2900000d}\n",
                 "schemathesis") as (process, token):
        # The cases are generated from document(); it is the one the collector serves.
        assert served_document(process.base) == document()
        yield process, token


def served_document(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(base + "/api/v1/openapi.json", timeout=10) as response:
        loaded: dict[str, Any] = json.load(response)
    return loaded


schema = schemathesis.openapi.from_dict(document()).exclude(path="/api/v1/control")
schema.config.generation.update(max_examples=MAX_EXAMPLES)


def check_stored(database: str, uids: list[str]) -> None:
    """Every row stored under these uids satisfies the measurement rules."""
    marks = ",".join("?" * len(uids))
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT uid, probe_cc, probe_asn, test_name, start_time, verdict, "
                          "layer, mechanism, body FROM measurements "
                          f"WHERE uid IN ({marks})", uids).fetchall()
    assert {r[0] for r in rows} == set(uids), "every acknowledged uid is stored"
    for uid, cc, asn, test_name, start, verdict, layer, mechanism, body in rows:
        assert re.fullmatch(r"[A-Z]{2}", cc)
        assert re.fullmatch(r"AS(0|[1-9][0-9]{0,9})", asn)
        assert _TIME.fullmatch(start)
        assert verdict is None or verdict in VERDICTS
        assert layer is None or _LABEL.fullmatch(layer)
        assert mechanism is None or _LABEL.fullmatch(mechanism)
        document = json.loads(unpack(body))
        assert document["measurement_uid"] == uid
        assert document["test_name"] == test_name
        assert document["measurement_start_time"] == start
        assert isinstance(document["test_keys"], dict)


@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_document(case: Case[Any],
                                      collector: tuple[CollectorProcess, str]) -> None:
    process, token = collector
    response = case.call(base_url=process.base, timeout=10,
                         headers={"Authorization": f"Bearer {token}"})
    assert response.status_code < 500, f"{case.method} {case.path}: {response.text[:500]}"
    case.validate_response(response, excluded_checks=[checks.positive_data_acceptance])
    if case.method == "POST" and case.path == "/api/v1/measurements" \
            and response.status_code == 200:
        stored = response.json()["stored"]
        check_stored(str(process.database), stored)


def test_every_stored_row_is_well_formed(collector: tuple[CollectorProcess, str]) -> None:
    """After the fuzzing above: the store holds what it accepted, and all of it is valid."""
    process, _ = collector
    with sqlite3.connect(process.database) as db:
        uids = [uid for (uid,) in db.execute("SELECT uid FROM measurements")]
    assert uids, "schemathesis got at least one measurement stored"
    check_stored(str(process.database), uids)
