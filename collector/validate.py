"""Validation of submitted measurements: every rejection carries a reason for the 400.

Rules follow OONI's collector (country two upper-case letters, ASN ``AS<digits>``, a known
test name, start time at most ``future_skew`` ahead and not older than the retention window)
plus size and JSON depth limits. The submitter's IP is never stored: if a measurement's text
still contains it, it is replaced with ``[scrubbed]`` before storage.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from collector.config import Limits
from collector.store import StoredMeasurement
from probe.scrub import SCRUBBED

KNOWN_TESTS = frozenset({
    "web_connectivity", "throttling", "connectivity", "telegram", "whatsapp", "signal",
    "facebook_messenger", "dns_check", "sni_ab", "censor_trace", "platform",
})
_CC = re.compile(r"^[A-Z]{2}$")
_ASN = re.compile(r"^AS(0|[1-9]\d{0,9})$")
_UID = re.compile(r"^[A-Za-z0-9._\-]{8,128}$")
_TIME = "%Y-%m-%d %H:%M:%S"


class Invalid(ValueError):
    """A measurement breaks a rule; ``str(exc)`` is the reason given to the client."""


def json_depth(value: Any, limit: int) -> int:
    """Depth of nested containers, stopping early once ``limit`` is exceeded."""
    depth, frontier = 0, [value]
    while frontier:
        depth += 1
        if depth > limit:
            return depth
        nxt: list[Any] = []
        for item in frontier:
            if isinstance(item, dict):
                nxt.extend(v for v in item.values() if isinstance(v, dict | list))
            elif isinstance(item, list):
                nxt.extend(v for v in item if isinstance(v, dict | list))
        frontier = nxt
    return depth


def _require_str(m: dict[str, Any], key: str) -> str:
    value = m.get(key)
    if not isinstance(value, str):
        raise Invalid(f"{key}: required string")
    return value


def validate(
    m: object, limits: Limits, now: datetime, probe_id: str, submitter_ip: str | None = None,
) -> StoredMeasurement:
    """Check one measurement and extract its columns; raises Invalid with the reason."""
    if not isinstance(m, dict):
        raise Invalid("measurement must be a JSON object")
    if json_depth(m, limits.max_json_depth) > limits.max_json_depth:
        raise Invalid(f"JSON nested deeper than {limits.max_json_depth}")
    uid = _require_str(m, "measurement_uid")
    if not _UID.match(uid):
        raise Invalid("measurement_uid: 8-128 characters of [A-Za-z0-9._-]")
    cc = _require_str(m, "probe_cc")
    if not _CC.match(cc):
        raise Invalid("probe_cc: two upper-case letters")
    asn = _require_str(m, "probe_asn")
    if not _ASN.match(asn):
        raise Invalid("probe_asn: AS followed by digits")
    test_name = _require_str(m, "test_name")
    if test_name not in KNOWN_TESTS:
        raise Invalid(f"test_name: unknown test {test_name[:40]!r}")
    start_text = _require_str(m, "measurement_start_time")
    try:
        start = datetime.strptime(start_text, _TIME).replace(tzinfo=UTC)
    except ValueError as exc:
        raise Invalid("measurement_start_time: expected 'YYYY-MM-DD HH:MM:SS'") from exc
    if start > now + timedelta(seconds=limits.future_skew):
        raise Invalid("measurement_start_time: in the future")
    if start < now - timedelta(seconds=limits.retention):
        raise Invalid("measurement_start_time: older than the retention window")
    input_ = m.get("input")
    if input_ is not None and not isinstance(input_, str):
        raise Invalid("input: must be a string or null")
    keys = m.get("test_keys")
    if not isinstance(keys, dict):
        raise Invalid("test_keys: required object")
    analysis = keys.get("analysis")
    verdict = layer = mechanism = None
    if analysis is not None:
        if not isinstance(analysis, dict):
            raise Invalid("test_keys.analysis: must be an object")
        verdict, layer, mechanism = (analysis.get(k) for k in ("verdict", "layer", "mechanism"))
        if verdict not in (None, "ok", "down", "blocked", "throttled", "inconclusive"):
            raise Invalid("test_keys.analysis.verdict: unknown verdict")
        for name, value in (("layer", layer), ("mechanism", mechanism)):
            if value is not None and (not isinstance(value, str) or len(value) > 32):
                raise Invalid(f"test_keys.analysis.{name}: short string or null")
    m = dict(m)
    m["probe_ip"] = "127.0.0.1"
    body = json.dumps(m, ensure_ascii=False, separators=(",", ":"))
    if submitter_ip and submitter_ip in body and submitter_ip not in ("127.0.0.1", "::1"):
        body = body.replace(submitter_ip, SCRUBBED)
    if len(body.encode()) > limits.max_measurement_bytes:
        raise Invalid(f"measurement larger than {limits.max_measurement_bytes} bytes")
    return StoredMeasurement(
        uid=uid, probe_id=probe_id, test_name=test_name, input=input_, probe_cc=cc,
        probe_asn=asn, start_time=start.strftime(_TIME), received_at=now.strftime(_TIME),
        verdict=verdict, layer=layer, mechanism=mechanism, body=body,
    )
