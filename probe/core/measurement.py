"""The measurement envelope: OONI's base data format (df-000) around a check's test keys."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from datetime import UTC, datetime
from typing import Any

from probe import __version__
from probe.core.evidence import with_fields
from probe.core.failures import OP_TOP_LEVEL
from probe.core.nettest_names import ANALYSIS_VERSIONS, TEST_VERSIONS
from probe.core.scrub import scrub_value

SOFTWARE_NAME = "kuzot"


def ooni_time(moment: datetime) -> str:
    """OONI's timestamp format: "YYYY-MM-DD HH:MM:SS" in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def new_uid(moment: datetime, cc: str, test_name: str) -> str:
    """OONI-shaped measurement uid: time, country, test and 16 random hex digits."""
    digest = hashlib.sha512(os.urandom(32)).hexdigest()[:16]
    return f"{moment.astimezone(UTC).strftime('%Y%m%d%H%M%S.%f')}_{cc}_{test_name}_{digest}"


def new_report_id(moment: datetime, test_name: str, cc: str, asn: str) -> str:
    token = hashlib.sha256(os.urandom(16)).hexdigest()[:20]
    return (f"{moment.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}_"
            f"{test_name.replace('_', '')}_{cc}_{asn.removeprefix('AS')}_n1_{token}")


def envelope(
    *,
    test_name: str,
    input_: str | None,
    test_keys: dict[str, Any],
    started: datetime,
    runtime: float,
    cc: str = "ZZ",
    asn: str = "AS0",
    network_name: str | None = None,
    resolver_ip: str | None = None,
    probe_id: str | None = None,
    report_id: str | None = None,
    scrub: set[str] | None = None,
) -> dict[str, Any]:
    """Wrap ``test_keys``; ``scrub`` names addresses (the probe's own) to replace everywhere.

    A verdict carries the ``analysis_version`` its kind of test declares (a verdict that
    stamped its own keeps it; the inconclusive verdict of a check that failed at
    ``top_level`` gets none: no rules ran), and one with an evidence list gets its typed form
    beside it (``analysis.evidence_fields``, ``probe.core.evidence``)."""
    analysis = test_keys.get("analysis")
    if isinstance(analysis, dict):
        if "analysis_version" not in analysis and test_name in ANALYSIS_VERSIONS and \
                test_keys.get("operation") != OP_TOP_LEVEL:
            analysis = _stamped(analysis, ANALYSIS_VERSIONS[test_name])
        test_keys = {**test_keys, "analysis": with_fields(analysis)}
    measurement = {
        "data_format_version": "0.2.0",
        "measurement_start_time": ooni_time(started),
        "test_start_time": ooni_time(started),
        "test_runtime": round(runtime, 6),
        "test_name": test_name,
        "test_version": TEST_VERSIONS.get(test_name, "0.1.0"),
        "input": input_,
        "probe_asn": asn,
        "probe_cc": cc,
        "probe_network_name": network_name,
        "probe_ip": "127.0.0.1",
        "resolver_ip": resolver_ip,
        "report_id": report_id or new_report_id(started, test_name, cc, asn),
        "measurement_uid": new_uid(started, cc, test_name),
        "software_name": SOFTWARE_NAME,
        "software_version": __version__,
        "annotations": {
            "platform": platform.system().lower(),
            "architecture": platform.machine(),
            "engine_name": "kuzot",
            **({"probe_id": probe_id} if probe_id else {}),
        },
        "test_keys": test_keys,
    }
    return scrub_value(measurement, scrub or set())  # type: ignore[no-any-return]


def _stamped(analysis: dict[str, Any], version: int) -> dict[str, Any]:
    """``analysis`` with its ``analysis_version``, before the ``evidence_fields`` a verdict
    written from its facts carries already (``probe.core.evidence.written``)."""
    out = {key: value for key, value in analysis.items() if key != "evidence_fields"}
    out["analysis_version"] = version
    if "evidence_fields" in analysis:
        out["evidence_fields"] = analysis["evidence_fields"]
    return out


def to_json(measurement: dict[str, Any], indent: int | None = None) -> str:
    return json.dumps(measurement, ensure_ascii=False, indent=indent, sort_keys=False)
