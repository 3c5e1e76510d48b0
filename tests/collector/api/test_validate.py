"""Validation rules as tables: each bad measurement gets its reason and a message naming the key."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collector.api.geoip import Location
from collector.api.validate import (
    REASONS,
    BatchInvalid,
    Invalid,
    batch_items,
    json_depth,
    parse_json,
    validate,
    validate_batch,
    validate_heartbeat,
)
from collector.config import Limits
from collector.store.body import unpack
from probe.core.evidence import with_fields
from probe.core.nettest_names import ANALYSIS_VERSIONS
from tests.collector.factory import measurement

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
LIMITS = Limits(max_measurement_bytes=64 * 1024, max_json_depth=12)


def at(delta: timedelta) -> str:
    return (NOW + delta).strftime("%Y-%m-%d %H:%M:%S")


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"x": value}
    return value


def without(key: str) -> dict[str, Any]:
    m = measurement(measurement_start_time=at(-timedelta(minutes=5)))
    del m[key]
    return m


def ok(**overrides: Any) -> dict[str, Any]:
    return measurement(**{"measurement_start_time": at(-timedelta(minutes=5)), **overrides})


INVALID: list[tuple[str, Any, str, str]] = [
    ("not an object", ["x"], "not_object", "measurement must be a JSON object"),
    ("too deep", ok(test_keys=nested(20)), "json_depth", "JSON nested deeper than 12"),
    ("no uid", without("measurement_uid"), "measurement_uid", "measurement_uid: required"),
    ("short uid", ok(measurement_uid="abc"), "measurement_uid", "8-128 characters"),
    ("uid with slash", ok(measurement_uid="2024/05/01/xyz"), "measurement_uid",
     "measurement_uid"),
    ("lower-case cc", ok(probe_cc="kg"), "probe_cc", "probe_cc: two upper-case letters"),
    ("three-letter cc", ok(probe_cc="KGZ"), "probe_cc", "probe_cc"),
    ("cc not a string", ok(probe_cc=7), "probe_cc", "probe_cc: required string"),
    ("asn without AS", ok(probe_asn="8449"), "probe_asn", "probe_asn: AS followed"),
    ("asn leading zero", ok(probe_asn="AS08449"), "probe_asn", "no leading zero"),
    ("asn too large", ok(probe_asn="AS4294967296"), "probe_asn", "32-bit"),
    ("unknown test", ok(test_name="http_header_field_manipulation"), "test_name",
     "test_name: unknown test"),
    ("bad time format", ok(measurement_start_time="2024-05-01T11:55:00Z"),
     "measurement_start_time", "expected 'YYYY-MM-DD HH:MM:SS'"),
    ("more than 1 h ahead", ok(measurement_start_time=at(timedelta(hours=1, seconds=1))),
     "future", "in the future"),
    ("older than retention", ok(measurement_start_time=at(-timedelta(days=401))),
     "too_old", "older than the retention window"),
    ("input not a string", ok(input=["https://kloop.kg/"]), "input", "string or null"),
    ("input with NUL", ok(input="https://kloop.kg/\x00"), "input", "no NUL"),
    ("input too long", ok(input="https://kloop.kg/" + "a" * 3000), "input", "2048"),
    ("no test_keys", without("test_keys"), "test_keys", "test_keys: required object"),
    ("analysis not object", ok(test_keys={"analysis": "ok"}), "analysis", "must be an object"),
    ("unknown verdict", ok(test_keys={"analysis": {"verdict": "censored"}}), "analysis",
     "verdict: one of ok, blocked, down, throttled, inconclusive"),
    ("mechanism with spaces", ok(test_keys={"analysis": {"verdict": "blocked",
                                                         "mechanism": "TCP reset!"}}),
     "analysis", "mechanism: short lower-case word"),
    ("confidence above 1", ok(test_keys={"analysis": {"confidence": 1.5}}), "analysis",
     "confidence: a number from 0 to 1"),
    ("confidence as text", ok(test_keys={"analysis": {"confidence": "high"}}), "analysis",
     "confidence: a number from 0 to 1"),
    ("analysis_version below 1", ok(test_keys={"analysis": {"analysis_version": 0}}),
     "analysis", "analysis_version: an integer from 1 to 1000000"),
    ("analysis_version as text", ok(test_keys={"analysis": {"analysis_version": "2"}}),
     "analysis", "analysis_version: an integer from 1 to 1000000"),
    ("confidence as boolean", ok(test_keys={"analysis": {"confidence": True}}), "analysis",
     "confidence: a number from 0 to 1"),
    ("evidence not a list", ok(test_keys={"analysis": {"evidence": "dns"}}), "analysis",
     "evidence: a list of strings"),
    ("evidence with an object", ok(test_keys={"analysis": {"evidence": ["dns", {}]}}),
     "analysis", "evidence: a list of strings"),
    ("evidence_fields not an object",
     ok(test_keys={"analysis": {"evidence": [], "evidence_fields": ["blockpage"]}}),
     "analysis", "test_keys.analysis.evidence_fields: expected an object, got a list"),
    ("evidence_fields with a ratio as text",
     ok(test_keys={"analysis": {"evidence_fields": {"slowdown": "3"}}}),
     "analysis", "evidence_fields.slowdown: expected a number or null, got a string"),
    ("evidence_fields with a zero ratio",
     ok(test_keys={"analysis": {"evidence_fields": {"goodput_ratio": 0}}}),
     "analysis", "evidence_fields.goodput_ratio: a positive number or null"),
    ("evidence_fields with an unknown layer",
     ok(test_keys={"analysis": {"evidence_fields": {"failed_layer": "quic"}}}),
     "analysis", "evidence_fields.failed_layer: one of dns, tcp, tls, http or null"),
    ("evidence_fields with a flag as text",
     ok(test_keys={"analysis": {"evidence_fields": {"control_unavailable": "yes"}}}),
     "analysis", "evidence_fields.control_unavailable: expected a boolean, got a string"),
    ("lone surrogate", ok(probe_network_name="\ud800"), "encoding", "surrogate"),
    ("too large", ok(test_keys={"blob": "x" * 70000}), "too_large", "larger than 65536"),
]


@pytest.mark.parametrize(("name", "value", "reason", "message"), INVALID,
                         ids=[c[0] for c in INVALID])
def test_invalid_measurements(name: str, value: Any, reason: str, message: str) -> None:
    with pytest.raises(Invalid) as info:
        validate(value, LIMITS, NOW, "p1")
    assert info.value.reason == reason
    assert reason in REASONS
    assert message in str(info.value)


def test_a_valid_measurement_becomes_columns_and_keeps_its_start_time() -> None:
    three_days_ago = at(-timedelta(days=3))
    m = ok(measurement_start_time=three_days_ago, probe_ip="198.51.100.9",
           test_keys={"analysis": {"verdict": "blocked", "layer": "dns",
                                   "mechanism": "nxdomain"}})
    row = validate(m, LIMITS, NOW, "p1")
    assert (row.uid, row.probe_id, row.test_name, row.probe_cc, row.probe_asn) == (
        m["measurement_uid"], "p1", "web_connectivity", "KG", "AS8449")
    assert row.start_time == three_days_ago  # a late upload keeps its original time
    assert row.received_at == "2024-05-01 12:00:00"
    assert (row.verdict, row.layer, row.mechanism) == ("blocked", "dns", "nxdomain")
    assert row.domain == "kloop.kg"
    stored = json.loads(row.body)
    assert stored["probe_ip"] == "127.0.0.1"  # never the real address
    assert stored["test_keys"] == m["test_keys"]
    assert (row.location_source, row.location_mismatch) == ("declared", False)


def test_boundaries_are_accepted() -> None:
    for start in (at(timedelta(hours=1)), at(-timedelta(days=400) + timedelta(seconds=1))):
        assert validate(ok(measurement_start_time=start), LIMITS, NOW, "p1")
    assert validate(ok(test_keys=nested(10)), LIMITS, NOW, "p1")
    assert validate(ok(input=None, test_name="telegram"), LIMITS, NOW, "p1").domain is None
    assert validate(ok(probe_asn="AS0", probe_cc="ZZ"), LIMITS, NOW, "p1")
    for confidence in (0, 1, 0.5):
        analysis = {"verdict": "ok", "confidence": confidence, "evidence": ["a", "b"]}
        assert validate(ok(test_keys={"analysis": analysis}), LIMITS, NOW, "p1")


@pytest.mark.parametrize("test_name", sorted(ANALYSIS_VERSIONS))
def test_every_kind_s_analysis_version_is_checked_and_stored(test_name: str) -> None:
    """Every kind's verdict carries its ``analysis_version``; a measurement recorded before
    that (none: version 1) is still accepted, a malformed one refused whatever the kind."""
    version = ANALYSIS_VERSIONS[test_name]
    analysis = {"verdict": "ok", "layer": None, "mechanism": None, "analysis_version": version}
    row = validate(ok(test_name=test_name, test_keys={"analysis": analysis}), LIMITS, NOW, "p1")
    assert json.loads(row.body)["test_keys"]["analysis"]["analysis_version"] == version
    assert validate(ok(test_name=test_name, test_keys={"analysis": {"verdict": "ok"}}),
                    LIMITS, NOW, "p1")
    for bad in (0, "1", 1.0, True, 1_000_001):
        with pytest.raises(Invalid, match="analysis_version: an integer from 1 to 1000000"):
            validate(ok(test_name=test_name, test_keys={"analysis": {"analysis_version": bad}}),
                     LIMITS, NOW, "p1")


def test_evidence_fields_as_the_probe_writes_them_are_accepted_and_stored_unchanged() -> None:
    evidence = ["probe_tls:ssl_unknown_authority", "issuer:Kazakhstan Root CA",
                "sha256:ab12", "control_tls:ok", "future_key:1"]
    analysis = with_fields({"verdict": "blocked", "layer": "tls", "mechanism": "mitm",
                            "confidence": 0.9, "evidence": evidence})
    # A newer probe may add a field; the collector keeps it.
    analysis["evidence_fields"]["x_newer"] = [1]
    row = validate(ok(test_keys={"analysis": analysis}), LIMITS, NOW, "p1")
    assert json.loads(row.body)["test_keys"]["analysis"] == analysis


def test_the_submitters_address_is_scrubbed_in_every_spelling() -> None:
    m = ok(input="https://203.0.113.7/", test_keys={
        "queries": [{"answers": [{"ipv4": "203.0.113.7"}, {"ipv4": "203.0.113.70"}]}],
        "network_events": [{"address": "[2001:db8::7]:443"}],
        "failure": "unknown_failure: dial tcp 203.0.113.7:443 from ::ffff:203.0.113.7"})
    row = validate(m, LIMITS, NOW, "p1", submitter_ip="203.0.113.7")
    assert "203.0.113.7\"" not in row.body and "203.0.113.7:" not in row.body
    assert "203.0.113.70" in row.body  # a different address is left alone
    assert row.input == "https://[scrubbed]/"
    body = json.loads(row.body)
    assert body["test_keys"]["failure"] == (
        "unknown_failure: dial tcp [scrubbed]:443 from [scrubbed]")
    row6 = validate(m, LIMITS, NOW, "p1", submitter_ip="2001:DB8:0::7")
    assert json.loads(row6.body)["test_keys"]["network_events"] == [
        {"address": "[[scrubbed]]:443"}]


def test_a_loopback_submitter_is_the_collectors_own_host_and_not_scrubbed() -> None:
    m = ok(test_keys={"tcp_connect": [{"ip": "127.0.0.1", "port": 443}]})
    row = validate(m, LIMITS, NOW, "p1", submitter_ip="127.0.0.1")
    assert json.loads(row.body)["test_keys"]["tcp_connect"][0]["ip"] == "127.0.0.1"


@pytest.mark.parametrize(("found", "expected"), [
    (None, ("KG", "AS8449", "declared", False)),
    (Location("KG", "AS8449"), ("KG", "AS8449", "geoip", False)),
    (Location("KZ", "AS9198"), ("KZ", "AS9198", "geoip", True)),
    (Location("KZ", None), ("KZ", "AS8449", "geoip", True)),
    (Location(None, "AS8449"), ("KG", "AS8449", "geoip", False)),
])
def test_location_comes_from_the_database_when_it_knows(
        found: Location | None, expected: tuple[str, str, str, bool]) -> None:
    row = validate(ok(), LIMITS, NOW, "p1", located=found)
    assert (row.probe_cc, row.probe_asn, row.location_source, row.location_mismatch) == expected
    assert json.loads(row.body)["probe_cc"] == "KG"  # the document keeps the declaration


@pytest.mark.parametrize(("raw", "reason", "message"), [
    (b"{", "body", "body is not valid JSON"),
    (b'{"x": NaN}', "body", "NaN is not JSON"),
    (b'{"x": Infinity}', "body", "Infinity is not JSON"),
    (b"\xff\xfe{}", "encoding", "body is not UTF-8"),
    (b"[" * 100000 + b"]" * 100000, "json_depth", "nested too deeply"),
])
def test_request_bodies_must_be_strict_json(raw: bytes, reason: str, message: str) -> None:
    with pytest.raises(Invalid) as info:
        parse_json(raw)
    assert (info.value.reason, message in str(info.value)) == (reason, True)


@pytest.mark.parametrize(("body", "message"), [
    ({"measurements": []}, "measurements: non-empty list required"),
    ({"measurements": {"a": 1}}, "measurements: non-empty list required"),
    ([{"a": 1}], "body: a measurement object"),
    ({"measurements": [{}] * 4}, "measurements: at most 3 per request"),
])
def test_batch_shape(body: Any, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        batch_items(body, max_batch=3)


def test_a_batch_reports_every_rejected_index() -> None:
    items = [ok(), ok(probe_cc="kg"), ok(), "nope", ok(test_name="x")]
    with pytest.raises(BatchInvalid) as info:
        validate_batch(items, LIMITS, NOW, "p1", None, None)
    assert [(r.index, r.reason) for r in info.value.rejections] == [
        (1, "probe_cc"), (3, "not_object"), (4, "test_name")]
    assert info.value.rejections[0].uid == items[1]["measurement_uid"]
    assert str(info.value).startswith("measurements[1]: probe_cc")


def test_json_depth_counts_containers() -> None:
    assert json_depth({"a": [1, {"b": []}]}, 10) == 4
    assert json_depth(1, 10) == 1
    assert json_depth(nested(50), 5) == 6  # stops early


@pytest.mark.parametrize(("body", "token_probe", "message"), [
    ({"sent_at": "2024-05-01 12:00:00", "probe_id": "p2"}, "p1", "does not match the token"),
    ({"sent_at": "yesterday"}, "p1", "sent_at: a UTC time"),
    ({"sent_at": "9999-12-31T23:59:59-01:00"}, "p1", "sent_at: a UTC time"),
    ({"sent_at": "0001-01-01T00:30:00+01:00"}, "p1", "sent_at: a UTC time"),
    ({}, "p1", "sent_at: required string"),
    ({"sent_at": "2024-05-01 12:00:00", "queue_depth": -1}, "p1", "queue_depth"),
    ({"sent_at": "2024-05-01 12:00:00", "queue_depth": True}, "p1", "queue_depth"),
    ({"sent_at": "2024-05-01 12:00:00", "software_version": "v" * 65}, "p1",
     "software_version"),
    ({"sent_at": "2024-05-01 12:00:00"}, None, "probe_id: required when tokens are not"),
    ({"sent_at": "2024-05-01 12:00:00", "probe_id": "a b"}, None, "probe_id: 1-64"),
    (["x"], "p1", "heartbeat must be a JSON object"),
])
def test_invalid_heartbeats(body: Any, token_probe: str | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_heartbeat(body, token_probe, None, NOW, LIMITS)


def test_a_heartbeat_is_normalised_and_scrubbed() -> None:
    fields = validate_heartbeat(
        {"sent_at": "2024-05-01T14:00:00+02:00", "queue_depth": 4, "software_version": "0.2",
         "note": "from 198.51.100.4"}, "p1", "198.51.100.4", NOW, LIMITS)
    assert (fields.probe_id, fields.sent_at, fields.queue_depth, fields.software_version) == (
        "p1", "2024-05-01 12:00:00", 4, "0.2")
    assert "198.51.100.4" not in fields.body and "[scrubbed]" in fields.body


def test_years_before_1000_keep_four_digits() -> None:
    """strftime writes year 76 as "76"; stored times must keep the fixed-width format."""
    early = Limits(retention=2000 * 366 * 86400.0)
    row = validate(ok(measurement_start_time="0076-06-18 10:42:23"), early, NOW, "p1")
    assert row.start_time == "0076-06-18 10:42:23"
    fields = validate_heartbeat({"sent_at": "0999-01-01T00:00:00Z"}, "p1", None, NOW, LIMITS)
    assert fields.sent_at == "0999-01-01 00:00:00"


@pytest.mark.parametrize(("sent", "kept"), [
    ("2024-05-01 12:00:00", "2024-05-01 12:00:00"),
    ("2024-5-1 9:0:0", "2024-05-01 09:00:00"),  # strptime's looser spelling, normalised
])
def test_start_time_is_stored_in_the_canonical_form(sent: str, kept: str) -> None:
    assert validate(ok(measurement_start_time=sent), LIMITS, NOW, "p1").start_time == kept


@pytest.mark.parametrize("sent", ["2024-13-01 12:00:00", "2024-05-01 12:00:60",
                                  "2024-05-01 12:00:00\n", " 2024-05-01 12:00:00",
                                  "2024-05-01T12:00:00"])
def test_start_times_that_are_not_times_are_refused(sent: str) -> None:
    with pytest.raises(Invalid) as caught:
        validate(ok(measurement_start_time=sent), LIMITS, NOW, "p1")
    assert caught.value.reason == "measurement_start_time"


def test_the_validated_row_carries_its_body_compressed() -> None:
    row = validate(ok(), LIMITS, NOW, "p1")
    assert row.packed is not None and unpack(row.packed) == row.body
