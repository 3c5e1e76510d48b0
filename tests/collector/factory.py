"""Valid measurements and stored rows for collector tests; override any field by keyword."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.store import StoredMeasurement

_counter = itertools.count()
TIME = "%Y-%m-%d %H:%M:%S"


def ooni_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIME)


def new_uid(prefix: str = "20240501T000000Z") -> str:
    return f"{prefix}_KG_web_connectivity_{next(_counter):016x}"


def measurement(*, verdict: str | None = "ok", ago: timedelta = timedelta(minutes=5),
                **overrides: Any) -> dict[str, Any]:
    """A web_connectivity measurement in the contract's format (design §2)."""
    start = ooni_time(datetime.now(UTC) - ago)
    keys: dict[str, Any] = {"blocking": False, "accessible": True}
    if verdict is not None:
        keys["analysis"] = {"verdict": verdict, "layer": None, "mechanism": None,
                            "confidence": 0.9, "evidence": []}
    body: dict[str, Any] = {
        "data_format_version": "0.2.0",
        "measurement_start_time": start,
        "test_start_time": start,
        "test_runtime": 1.5,
        "test_name": "web_connectivity",
        "test_version": "0.5.0",
        "input": "https://kloop.kg/",
        "probe_asn": "AS8449",
        "probe_cc": "KG",
        "probe_network_name": "Kyrgyztelecom",
        "probe_ip": "127.0.0.1",
        "resolver_ip": None,
        "report_id": "20240501T000000Z_webconnectivity_KG_8449_n1_abcdef",
        "measurement_uid": new_uid(),
        "software_name": "kuzot",
        "software_version": "0.1.0",
        "annotations": {"platform": "linux"},
        "test_keys": keys,
    }
    body.update(overrides)
    return body


def stored(start_time: str = "2024-05-01 12:00:00", **overrides: Any) -> StoredMeasurement:
    """A row as the validator would build it."""
    values: dict[str, Any] = {
        "uid": new_uid(), "probe_id": "p1", "test_name": "web_connectivity",
        "input": "https://kloop.kg/", "probe_cc": "KG", "probe_asn": "AS8449",
        "start_time": start_time, "received_at": "2024-05-01 12:05:00", "verdict": "ok",
        "layer": None, "mechanism": None, "body": "{}",
    }
    values.update(overrides)
    if values["body"] == "{}":
        values["body"] = f'{{"measurement_uid": "{values["uid"]}"}}'
    return StoredMeasurement(**values)
