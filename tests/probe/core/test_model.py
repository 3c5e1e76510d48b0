"""The typed measurement model reads every stored measurement and writes it back unchanged.

"Unchanged" is byte for byte: ``json.dumps`` of ``Measurement.from_wire(d).to_wire()`` equals
``json.dumps(d)``, both as the collector stores bodies (compact, UTF-8) and as the probe prints
them. The measurements come from everywhere they are kept: OONI's QA corpus (OONI Probe's own
files), Kuzot measurements in the format written before OONI's ``x_`` prefix, the detection
scenarios' fleets, the loopback fleet of the collector tests, and the analysis table's
observations wrapped as the probe wraps them. (The lab's real measurements are checked in
``tests/lab/test_model_round_trip.py``; a real ``probe check --json`` in
``tests/probe/cli/test_cli_check.py``.)
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from probe.core import model as core_model
from probe.core.evidence import Evidence, facts, with_fields
from probe.core.measurement import envelope
from probe.core.model import (
    Analysis,
    ConnectivityKeys,
    DNSQuery,
    Measurement,
    ModelError,
    PlatformKeys,
    ThrottlingKeys,
    WebConnectivityKeys,
)
from probe.nettests.web_connectivity import analysis
from tests.collector import scenarios
from tests.helpers import fleet, ooni_format
from tests.probe.nettests.web_connectivity.test_analysis_table import ROWS

STARTED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def same_bytes(document: dict[str, Any]) -> Measurement:
    """Read ``document``, write it back, and require the same bytes in both serialisations."""
    model = Measurement.from_wire(document)
    back = model.to_wire()
    compact = {"ensure_ascii": False, "separators": (",", ":")}
    assert json.dumps(back, **compact) == json.dumps(document, **compact)  # type: ignore[arg-type]
    assert json.dumps(back, indent=2) == json.dumps(document, indent=2)
    return model


@pytest.mark.parametrize("path", ooni_format.corpus_files(),
                         ids=[p.parent.name + "/" + p.name for p in ooni_format.corpus_files()])
def test_oonis_own_measurements_round_trip(path: Any) -> None:
    document = ooni_format.read(path)
    model = same_bytes(document)
    keys = model.test_keys
    assert isinstance(keys, WebConnectivityKeys)
    assert keys.blocking == document["test_keys"]["blocking"]
    assert keys.accessible == document["test_keys"]["accessible"]
    for typed, raw in zip(keys.queries or (), document["test_keys"]["queries"] or [],
                          strict=True):
        assert isinstance(typed, DNSQuery)
        assert (typed.engine, typed.failure, typed.rcode) == (
            raw.get("engine"), raw.get("failure"), raw.get("rcode"))
    assert len(keys.requests or ()) == len(document["test_keys"]["requests"] or [])


def test_the_corpus_is_there() -> None:
    assert len(ooni_format.corpus_files()) >= 56


def _table_measurements() -> list[dict[str, Any]]:
    out = []
    for row in ROWS:
        url, keys = row.build()
        keys = {**keys, **analysis.analyze(keys, url, row.cc)}
        out.append(envelope(test_name="web_connectivity", input_=url, test_keys=keys,
                            started=STARTED, runtime=1.0, cc=row.cc or "ZZ", asn="AS8449"))
    return out


def test_the_probes_measurements_of_the_analysis_table_round_trip() -> None:
    measurements = _table_measurements()
    assert len(measurements) == len(ROWS) > 50
    for document in measurements:
        model = same_bytes(document)
        assert model.analysis is not None
        assert model.analysis.analysis_version == analysis.ANALYSIS_VERSION
        assert model.analysis.evidence == tuple(document["test_keys"]["analysis"]["evidence"])
        # The probe wrote the typed evidence beside the strings.
        assert model.analysis.evidence_fields == facts(model.analysis.evidence or ())


def test_measurements_in_the_older_kuzot_format_round_trip() -> None:
    for document in _table_measurements():
        old = ooni_format.older_format(document)
        assert old != document
        model = same_bytes(old)
        assert isinstance(model.test_keys, WebConnectivityKeys)


def test_the_detection_scenarios_and_the_loopback_fleet_round_trip() -> None:
    kinds: dict[type, int] = {}
    for name in scenarios.names():
        for arrival in scenarios.expand(scenarios.load(name)):
            if arrival.measurement is not None:
                model = same_bytes(arrival.measurement)
                kinds[type(model.test_keys)] = kinds.get(type(model.test_keys), 0) + 1
    for _probe, cc, asn, targets in fleet.FLEET:
        for target, options in targets:
            same_bytes(fleet.web_measurement(target, cc, asn, started=STARTED, **options))
    assert kinds[WebConnectivityKeys] > 1000 and kinds[ConnectivityKeys] > 100
    assert kinds[ThrottlingKeys] > 10


def test_each_test_name_reads_its_own_keys() -> None:
    def of(test_name: str, keys: dict[str, Any]) -> Any:
        return Measurement.from_wire({"test_name": test_name, "test_keys": keys}).test_keys

    assert isinstance(of("telegram", {"x_platform": "telegram"}), PlatformKeys)
    assert isinstance(of("throttling", {"flows": []}), ThrottlingKeys)
    assert isinstance(of("connectivity", {"rungs": {}}), ConnectivityKeys)
    unknown = of("dns_check", {"anything": [1], "analysis": {"verdict": "ok"}})
    assert type(unknown) is core_model.TestKeys
    assert unknown.analysis is not None and unknown.analysis.verdict == "ok"
    assert unknown.extra == {"anything": [1]}


def test_absent_and_null_stay_apart_and_other_keys_ride_along() -> None:
    document = {"test_name": "web_connectivity", "input": None, "x_new": {"a": 1},
                "test_keys": {"control_failure": None, "later_key": [1.0, 2]}}
    model = same_bytes(document)
    assert model.input is None and model.present("input")
    assert model.resolver_ip is None and not model.present("resolver_ip")
    assert model.extra == {"x_new": {"a": 1}}
    assert "blocking" not in model.test_keys.to_wire()
    # Empty objects of modelled records stay empty.
    same_bytes({"test_name": "web_connectivity", "test_keys": {
        "tcp_connect": [{"ip": "192.0.2.1", "status": {}}], "analysis": {}}})


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m.update(probe_cc=7), "$.probe_cc: expected a string or null, got a number"),
    (lambda m: m["test_keys"]["queries"][0].update(answers=[{"ipv4": 10}]),
     "$.test_keys.queries[0].answers[0].ipv4: expected a string or null, got a number"),
    (lambda m: m["test_keys"].update(accessible="yes"),
     "$.test_keys.accessible: expected a boolean or null, got a string"),
    (lambda m: m["test_keys"]["tcp_connect"][0].update(port="443"),
     "$.test_keys.tcp_connect[0].port: expected an integer or null, got a string"),
    (lambda m: m["test_keys"]["analysis"].update(evidence="dns"),
     "$.test_keys.analysis.evidence: expected a list or null, got a string"),
    (lambda m: m.update(test_keys=[]), "$.test_keys: expected an object"),
])
def test_a_key_that_does_not_fit_is_named_with_its_path(change: Any, message: str) -> None:
    document = copy.deepcopy(_table_measurements()[0])
    document["test_keys"]["tcp_connect"] = document["test_keys"]["tcp_connect"] or [{}]
    document["test_keys"]["queries"] = document["test_keys"]["queries"] or [{}]
    change(document)
    with pytest.raises(ModelError) as info:
        Measurement.from_wire(document)
    assert str(info.value) == message


def test_a_record_built_in_code_writes_its_fields_in_order_and_leaves_out_optional_ones() -> None:
    verdict = Analysis(verdict="ok", confidence=0.9, evidence=("https_status:200",))
    assert verdict.to_wire() == {"verdict": "ok", "layer": None, "mechanism": None,
                                 "confidence": 0.9, "evidence": ["https_status:200"]}
    assert verdict.version == 1
    stamped = Analysis(verdict="ok", analysis_version=2, evidence_fields=Evidence())
    assert stamped.to_wire()["analysis_version"] == 2
    assert stamped.to_wire()["evidence_fields"]["control_unavailable"] is False


def test_evidence_fields_are_the_facts_of_the_strings() -> None:
    mitm = facts(["probe_tls:ssl_unknown_authority", "issuer:Kazakhstan Root CA",
                  "sha256:ab12", "control_issuer:Let's Encrypt", "confirmed:kz_state_ca"])
    assert (mitm.failed_layer, mitm.failure, mitm.issuer, mitm.certificate_sha256,
            mitm.confirmed) == ("tls", "ssl_unknown_authority", "Kazakhstan Root CA", "ab12",
                                "kz_state_ca")
    assert mitm.fingerprint("mitm") == "issuer:Kazakhstan Root CA"
    assert mitm.fingerprint("diff") is None
    assert facts(["issuer:None", "issuer:Other"]).issuer == "Other"
    page = facts(["http_status:200", "blockpage:kz_court", "blockpage:other"])
    assert page.fingerprint(None) == "blockpage:kz_court"
    nocontrol = facts(["control_failure:None"])
    assert nocontrol.control_unavailable and nocontrol.control_failure is None
    assert facts(["probe_dns:x", "control:missing"]).control_unavailable
    # The probe's own connection failure outranks a later HTTP one, and a first HTTP one.
    assert facts(["probe_http:eof_error", "probe_tcp:connection_reset"]).failed_layer == "tcp"
    throttled = facts(["goodput_ratio:4", "handshake_ratio:2.5"])
    assert (throttled.goodput_ratio, throttled.handshake_ratio) == (4.0, 2.5)
    assert throttled.goodput_comparable is True and throttled.slowdown_estimate() == 4.0
    short = facts(["goodput_ratio:4", "handshake_ratio:2.5", "goodput_not_comparable"])
    assert short.goodput_comparable is False and short.slowdown_estimate() == 2.5
    assert facts(["slowdown:8", "goodput_ratio:4"]).slowdown_estimate() == 8.0
    assert facts(["goodput_ratio:nan", "handshake_ratio:0"]).slowdown_estimate() is None
    assert facts(["https_status:200"]) == Evidence(goodput_comparable=None)


def test_with_fields_adds_them_once_and_leaves_the_ladder_alone() -> None:
    verdict = {"verdict": "blocked", "evidence": ["probe_dns:dns_nxdomain_error"]}
    added = with_fields(verdict)
    assert list(added) == ["verdict", "evidence", "evidence_fields"]
    assert added["evidence_fields"]["failed_layer"] == "dns"
    assert with_fields(added) == added
    ladder = {"online": True, "summary": "online"}
    assert with_fields(ladder) == ladder
