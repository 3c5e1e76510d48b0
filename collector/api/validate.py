"""Validation of submitted measurements: every rejection carries a reason for the 400.

Rules follow OONI's collector (``shared`` reference §4: country two upper-case letters, ASN
``AS<digits>`` without leading zeros, a known test name, start time at most ``future_skew``
ahead and not older than the retention window) plus size, JSON depth and encoding limits, so
that whatever is accepted can be stored by both stores and served back unchanged.

Privacy: the submitter's IP address is never stored. ``probe_ip`` is forced to "127.0.0.1"
(as OONI's probes send it) and every spelling of the submitter's address left in any string of
the document is replaced with ``[scrubbed]`` before storage, by the probe's own matcher
(``probe.core.scrub``). A loopback submitter is the collector's own host and is left alone, so
local labs keep their loopback site addresses.

Identity: the stored document names the probe the bearer token belongs to
(``annotations.probe_id``), whatever the body claimed.

Each ``Invalid`` has a ``reason`` from the closed set ``REASONS`` (a metric label) and a message
that names the key.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import orjson

from collector.api.geoip import Location, place
from collector.detect import extract, observed
from collector.limits import Limits
from collector.store import TIME_FORMAT, VERDICTS, StoredMeasurement
from collector.store.body import pack_utf8
from probe.core.evidence import Evidence
from probe.core.nettest_names import TEST_NAMES
from probe.core.record import ModelError
from probe.core.scrub import Predicate, same_address, scrub_document

# The probe's kinds of test (``probe.nettests.NETTESTS``), through the copy in probe.core.
KNOWN_TESTS = TEST_NAMES
REASONS = (
    "body", "batch", "not_object", "json_depth", "encoding", "too_large", "measurement_uid",
    "probe_cc", "probe_asn", "test_name", "measurement_start_time", "future", "too_old",
    "input", "test_keys", "analysis", "annotations",
)
# Used with fullmatch: "$" would let a final newline through and "\d" other scripts' digits.
_CC = re.compile(r"[A-Z]{2}")
_ASN = re.compile(r"AS(0|[1-9][0-9]{0,9})")
_UID = re.compile(r"[A-Za-z0-9._\-]{8,128}")
_WORD = re.compile(r"[a-z0-9_]{1,32}")
# Numbers every JSON reader can hold: finite doubles and integers of 64 bits at most.
MAX_INTEGER = 2**63
MAX_INPUT = 2048


class Invalid(ValueError):
    """A measurement breaks a rule; ``str(exc)`` is the reason given to the client."""

    def __init__(self, reason: str, message: str) -> None:
        assert reason in REASONS, reason
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    uid: str | None
    reason: str
    message: str


class BatchInvalid(ValueError):
    """Some measurements of a batch are invalid; nothing of the batch is stored."""

    def __init__(self, rejections: list[Rejection]) -> None:
        first = rejections[0]
        super().__init__(f"measurements[{first.index}]: {first.message}")
        self.rejections = rejections


def utc_text(moment: datetime) -> str:
    """``YYYY-MM-DD HH:MM:SS`` with a four-digit year even before 1000 (``strftime`` writes
    year 76 as ``76``, which then sorts wrong and does not parse back)."""
    return f"{moment.year:04d}-{moment:%m-%d %H:%M:%S}"


class _OutOfRange(ValueError):
    """A JSON number no reader can hold exactly; the message quotes it."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _OutOfRange(f"number {text[:40]} is out of range (larger than a double)")
    return value


def _bounded(text: str) -> int:
    # Python refuses more than 4300 digits itself (a ValueError, so also a 400).
    value = int(text)
    if not -MAX_INTEGER <= value < MAX_INTEGER:
        raise _OutOfRange(f"number {text[:40]} is out of range (integers fit in 64 bits)")
    return value


def parse_json(raw: bytes) -> Any:
    """Strict JSON: UTF-8, no NaN/Infinity, finite numbers within 64 bits, bounded nesting
    (deep input fails, not crashes). ``1e999999`` would otherwise become ``inf``, be stored
    as ``Infinity`` and served back as text no JSON parser accepts.

    orjson parses in about half the time of the standard library (BENCHMARKS.md, "Parsing
    and serializing"), but it reads an integer beyond 64 bits as a float, silently, and
    one from 2**63 to 2**64 as an integer; so a body with a number of 19 digits or more goes
    to the standard library's parse, the rule's reference. Whatever orjson refuses goes there
    too, and that parse gives the reason (or accepts what only orjson refuses: a lone
    surrogate escape, which ``validate`` then rejects as ``encoding``, as before). The one
    difference left: orjson nests up to 1,024 levels where the standard library stops near
    1,000, so a body nested that deep is refused per measurement (``json_depth``, or
    ``batch`` when it is no object) instead of as a whole.
    """
    if not _may_hold_a_long_number(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass  # the reason comes from the reference parse below
    return _parse_standard(raw)


# Where a JSON number can start: after "[", ",", ":" or whitespace (or first in the text);
# "-" joins them so that "-9223372036854775809" is seen. A digit becomes "0", any other byte
# ".", so a run of 19 digits in number position is "(" and nineteen "0", found in C. Digits
# inside a string after one of those characters (a page's text) only cost the slower parse.
_NUMBER_SHAPES = bytes(
    ord("0") if c in b"0123456789" else ord("(") if c in b"[,: \t\n\r-" else ord(".")
    for c in range(256))
_LONG_NUMBER = b"(" + b"0" * 19


def _may_hold_a_long_number(raw: bytes) -> bool:
    return _LONG_NUMBER in (b" " + raw[:20]).translate(_NUMBER_SHAPES) or \
        _LONG_NUMBER in raw.translate(_NUMBER_SHAPES)


def _parse_standard(raw: bytes) -> Any:
    """The standard library's parse with the rules as hooks: the reference for
    ``parse_json``, and every reason it gives."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Invalid("encoding", f"body is not UTF-8: {exc.reason} at byte {exc.start}") from exc
    try:
        return json.loads(text, parse_constant=_reject_constant, parse_float=_finite,
                          parse_int=_bounded)
    except RecursionError as exc:
        raise Invalid("json_depth", "body is not valid JSON: nested too deeply") from exc
    except _OutOfRange as exc:
        raise Invalid("body", f"body: {exc}") from exc
    except ValueError as exc:
        raise Invalid("body", f"body is not valid JSON: {exc}") from exc


def serialize(document: dict[str, Any]) -> bytes:
    """The stored document's UTF-8 JSON, compact, non-ASCII as itself.

    orjson writes it in a fifth of the standard library's time. Its text differs from
    ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` only in how a float with an
    exponent is spelled (``1.5e-7`` for ``1.5e-07``), the same number to every reader. What it
    refuses (a lone surrogate, nesting past 254 levels when ``max_json_depth`` allows it) is
    written by the standard library, which raises ``Invalid("encoding")`` for the surrogate.
    """
    try:
        return orjson.dumps(document)
    except orjson.JSONEncodeError:
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise Invalid("encoding",
                          "measurement contains an unpaired UTF-16 surrogate") from exc


_CANONICAL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def _start_time(text: str) -> tuple[datetime, str]:
    """A measurement's start time and its stored text; ValueError when it is not one.

    Probes send the canonical form, which is read by slicing (``strptime`` costs several
    times more, for every measurement) and is already the stored text; any other spelling
    ``strptime`` accepts (single digits) goes the long way and is normalised."""
    if _CANONICAL_TIME.fullmatch(text):
        moment = datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]), int(text[11:13]),
                          int(text[14:16]), int(text[17:19]), tzinfo=UTC)
        return moment, text
    moment = datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)
    return moment, utc_text(moment)


@lru_cache(maxsize=4)
def _time_text(moment: datetime) -> str:
    """``moment`` in TIME_FORMAT: one request's measurements share their receive time."""
    return moment.strftime(TIME_FORMAT)


@lru_cache(maxsize=256)
def _submitter(address: str | None) -> Predicate | None:
    """Whose address to scrub: the submitter's, unless it is this host's own loopback.
    Cached: every measurement of a request asks, and parsing the address costs more than
    the rest of its checks."""
    if not address:
        return None
    try:
        parsed = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    # Only the usual loopback addresses: tests stand for remote probes with others of 127/8.
    return None if str(parsed) in ("127.0.0.1", "::1") else same_address(str(parsed))


_CONTAINERS = (dict, list)  # a tuple: isinstance with it is faster than with ``dict | list``


def json_depth(value: Any, limit: int) -> int:
    """Depth of nested containers, stopping early once ``limit`` is exceeded. Runs for every
    uploaded measurement, hence the plain loops (about half the time of generators)."""
    if not isinstance(value, _CONTAINERS):
        return 1
    depth, frontier = 0, [value]
    while frontier:
        depth += 1
        if depth > limit:
            return depth
        deeper: list[Any] = []
        add = deeper.append
        for item in frontier:
            for child in (item.values() if isinstance(item, dict) else item):
                if isinstance(child, _CONTAINERS):
                    add(child)
        frontier = deeper
    return depth


def _require_str(m: dict[str, Any], key: str) -> str:
    value = m.get(key)
    if not isinstance(value, str):
        raise Invalid(key, f"{key}: required string")
    return value


def _analysis(keys: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    analysis = keys.get("analysis")
    if analysis is None:
        return None, None, None
    if not isinstance(analysis, dict):
        raise Invalid("analysis", "test_keys.analysis: must be an object")
    verdict, layer, mechanism = (analysis.get(k) for k in ("verdict", "layer", "mechanism"))
    if verdict is not None and verdict not in VERDICTS:
        raise Invalid("analysis", f"test_keys.analysis.verdict: one of {', '.join(VERDICTS)}")
    for name, value in (("layer", layer), ("mechanism", mechanism)):
        if value is not None and not (isinstance(value, str) and _WORD.fullmatch(value)):
            raise Invalid("analysis", f"test_keys.analysis.{name}: short lower-case word or null")
    # As the OpenAPI document says: readers of stored analyses can rely on these types.
    if "confidence" in analysis:
        confidence = analysis["confidence"]
        if not (isinstance(confidence, int | float) and not isinstance(confidence, bool)
                and 0 <= confidence <= 1):
            raise Invalid("analysis", "test_keys.analysis.confidence: a number from 0 to 1")
    evidence = analysis.get("evidence", [])
    if not (isinstance(evidence, list) and all(isinstance(e, str) for e in evidence)):
        raise Invalid("analysis", "test_keys.analysis.evidence: a list of strings")
    if "evidence_fields" in analysis:
        try:
            Evidence.from_wire(analysis["evidence_fields"], "test_keys.analysis.evidence_fields")
        except ModelError as exc:
            raise Invalid("analysis", str(exc)) from exc
    if "analysis_version" in analysis:
        version = analysis["analysis_version"]
        if not (isinstance(version, int) and not isinstance(version, bool) and
                1 <= version <= 1_000_000):
            raise Invalid("analysis",
                          "test_keys.analysis.analysis_version: an integer from 1 to 1000000")
    return verdict, layer, mechanism


def validate(
    m: object, limits: Limits, now: datetime, probe_id: str, submitter_ip: str | None = None,
    located: Location | None = None, *, keep_text: bool = True,
) -> StoredMeasurement:
    """Check one measurement and extract its columns; raises Invalid with the reason.

    ``keep_text=False`` leaves ``body`` empty: the row carries its document as ``packed``
    only (``collector.api.prepare``, for a worker process to send back)."""
    if not isinstance(m, dict):
        raise Invalid("not_object", "measurement must be a JSON object")
    if json_depth(m, limits.max_json_depth) > limits.max_json_depth:
        raise Invalid("json_depth", f"JSON nested deeper than {limits.max_json_depth}")
    own = _submitter(submitter_ip)
    if own is not None:
        scrubbed: dict[str, Any] = scrub_document(m, own)[0]
        m = scrubbed
    uid = _require_str(m, "measurement_uid")
    if not _UID.fullmatch(uid):
        raise Invalid("measurement_uid", "measurement_uid: 8-128 characters of [A-Za-z0-9._-]")
    cc = _require_str(m, "probe_cc")
    if not _CC.fullmatch(cc):
        raise Invalid("probe_cc", "probe_cc: two upper-case letters")
    asn = _require_str(m, "probe_asn")
    if not _ASN.fullmatch(asn) or int(asn[2:]) > 2**32 - 1:
        raise Invalid("probe_asn", "probe_asn: AS followed by a 32-bit number, no leading zero")
    test_name = _require_str(m, "test_name")
    if test_name not in KNOWN_TESTS:
        raise Invalid("test_name", f"test_name: unknown test {test_name[:40]!r}")
    start_text = _require_str(m, "measurement_start_time")
    try:
        start, start_time = _start_time(start_text)
    except ValueError as exc:
        raise Invalid("measurement_start_time",
                      "measurement_start_time: expected 'YYYY-MM-DD HH:MM:SS' (UTC)") from exc
    if start > now + timedelta(seconds=limits.future_skew):
        raise Invalid("future", "measurement_start_time: in the future")
    if start < now - timedelta(seconds=limits.retention):
        raise Invalid("too_old", "measurement_start_time: older than the retention window")
    input_ = m.get("input")
    if input_ is not None and not isinstance(input_, str):
        raise Invalid("input", "input: must be a string or null")
    if input_ is not None and (len(input_) > MAX_INPUT or "\x00" in input_):
        raise Invalid("input", f"input: at most {MAX_INPUT} characters, no NUL")
    keys = m.get("test_keys")
    if not isinstance(keys, dict):
        raise Invalid("test_keys", "test_keys: required object")
    verdict, layer, mechanism = _analysis(keys)
    annotations = m.get("annotations", {})
    if not isinstance(annotations, dict):
        raise Invalid("annotations", "annotations: must be an object")
    # The identity is the token's: a probe_id claimed in the body is replaced, not trusted.
    m = {**m, "probe_ip": "127.0.0.1", "annotations": {**annotations, "probe_id": probe_id}}
    if "probe_id" in m:
        m["probe_id"] = probe_id
    data = serialize(m)
    if len(data) > limits.max_measurement_bytes:
        raise Invalid("too_large", f"measurement larger than {limits.max_measurement_bytes} bytes")
    placement = place(cc, asn, located)
    return StoredMeasurement(
        uid=uid, probe_id=probe_id, test_name=test_name, input=input_, probe_cc=placement.cc,
        probe_asn=placement.asn, start_time=start_time,
        received_at=_time_text(now), verdict=verdict, layer=layer,
        mechanism=mechanism, body=data.decode("utf-8") if keep_text else "",
        location_source=placement.source,
        location_mismatch=placement.mismatch,
        # Compressed here, on validation's worker thread, from the bytes just measured: the
        # store's writer then spends no time on it inside its transaction.
        packed=pack_utf8(data),
        # What detection makes of the stored document, from this parse of it: detection then
        # reads this instead of decompressing and parsing the body again.
        observation=_observation(m, probe_id),
    )


def _observation(m: dict[str, Any], probe_id: str) -> str | None:
    """What detection makes of stored document ``m`` (``collector.detect.observed``), or
    None, storing none, should extracting it ever fail: detection then reads the body, and
    the upload is stored whatever shape it has (no 5xx)."""
    try:
        return observed.encode(extract.observation(m, probe_id))
    except Exception:  # a document of any shape may be uploaded
        return None


def batch_items(body: Any, max_batch: int) -> list[Any]:
    """The measurements of a request body: one object, or ``{"measurements": [...]}``."""
    if isinstance(body, dict) and "measurements" in body:
        items = body["measurements"]
        if not isinstance(items, list) or not items:
            raise Invalid("batch", "measurements: non-empty list required")
    elif isinstance(body, dict):
        items = [body]
    else:
        raise Invalid("batch", "body: a measurement object or {\"measurements\": [...]}")
    if len(items) > max_batch:
        raise Invalid("batch", f"measurements: at most {max_batch} per request")
    return items


def validate_batch(items: list[Any], limits: Limits, now: datetime, probe_id: str,
                   submitter_ip: str | None, located: Location | None, *,
                   keep_text: bool = True) -> list[StoredMeasurement]:
    """Validate every item; raises BatchInvalid listing each rejected index and reason."""
    rows, rejections = [], []
    for index, item in enumerate(items):
        try:
            rows.append(validate(item, limits, now, probe_id, submitter_ip, located,
                                 keep_text=keep_text))
        except Invalid as exc:
            uid = item.get("measurement_uid") if isinstance(item, dict) else None
            rejections.append(Rejection(index, uid[:128] if isinstance(uid, str) else None,
                                        exc.reason, str(exc)))
    if rejections:
        raise BatchInvalid(rejections)
    return rows


@dataclass(frozen=True, slots=True)
class HeartbeatFields:
    probe_id: str
    sent_at: str
    queue_depth: int | None
    software_version: str | None
    body: str


_PROBE_ID = re.compile(r"[A-Za-z0-9._\-]{1,64}")


def _heartbeat_time(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError("sent_at: required string")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        # An offset can carry 9999-12-31 past the last representable UTC time.
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else \
            moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise ValueError("sent_at: a UTC time such as 2024-05-01 12:00:00 or "
                         "2024-05-01T12:00:00Z") from exc
    return utc_text(moment)


def validate_heartbeat(body: object, probe_id: str | None, submitter_ip: str | None,
                       now: datetime, limits: Limits) -> HeartbeatFields:
    """Check a heartbeat; ``probe_id`` is the token's (None when tokens are not required).

    Raises ValueError with the reason. ``sent_at`` is the probe's clock and is kept as sent
    (clocks drift); liveness uses the collector's receive time.
    """
    if not isinstance(body, dict):
        raise ValueError("heartbeat must be a JSON object")
    claimed = body.get("probe_id")
    if claimed is not None and (not isinstance(claimed, str) or not _PROBE_ID.fullmatch(claimed)):
        raise ValueError("probe_id: 1-64 characters of [A-Za-z0-9._-]")
    if probe_id is not None and claimed is not None and claimed != probe_id:
        raise ValueError("probe_id: does not match the token")
    who = probe_id or claimed
    if who is None:
        raise ValueError("probe_id: required when tokens are not")
    sent_at = _heartbeat_time(body.get("sent_at"))
    depth = body.get("queue_depth")
    if depth is not None and (not isinstance(depth, int) or isinstance(depth, bool)
                              or not 0 <= depth < 2**31):
        raise ValueError("queue_depth: a non-negative integer")
    version = body.get("software_version")
    if version is not None and (not isinstance(version, str) or len(version) > 64
                                or "\x00" in version):
        raise ValueError("software_version: a string of at most 64 characters")
    if json_depth(body, limits.max_json_depth) > limits.max_json_depth:
        raise ValueError(f"heartbeat nested deeper than {limits.max_json_depth}")
    own = _submitter(submitter_ip)
    if own is not None:
        body = scrub_document(body, own)[0]
    text = json.dumps(body, ensure_ascii=True, separators=(",", ":"))
    return HeartbeatFields(who, sent_at, depth, version, text)
