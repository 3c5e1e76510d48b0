"""``Fact``: the evidence the web connectivity rules state, written as the same strings as
before and read into the same fields, without parsing the strings."""

from __future__ import annotations

import json

from probe.core.evidence import Evidence, Fact, facts, flag, of_facts
from tests.helpers.paths import TESTDATA


def test_a_fact_prints_as_its_key_and_value_and_a_flag_as_its_key() -> None:
    assert str(Fact("probe_tls", "ssl_unknown_authority")) == "probe_tls:ssl_unknown_authority"
    assert str(Fact("depth", 2)) == "depth:2"
    assert str(Fact("probe_dns", None)) == "probe_dns:None"  # a missing value is still a fact
    assert str(flag("dns_inconsistent")) == "dns_inconsistent"
    assert str(Fact("endpoint_failed", "192.0.2.1:443:connection_reset")) == \
        "endpoint_failed:192.0.2.1:443:connection_reset"


def test_fields_read_from_facts_follow_the_precedence_of_the_strings() -> None:
    found = [Fact("probe_http", "eof_error"), Fact("probe_tls", "connection_reset"),
             Fact("probe_dns", "dns_nxdomain_error"), Fact("control_failure", None),
             Fact("blockpage", "kz_gov"), Fact("blockpage", "other"), Fact("issuer", None),
             Fact("issuer", "Root CA"), Fact("sha256", "ab12"), flag("dns_inconsistent"),
             Fact("control", "missing"), Fact("dns_inconsistent", "x")]
    expected = Evidence(failed_layer="tls", failure="connection_reset",
                        control_unavailable=True, blockpage="kz_gov", issuer="Root CA",
                        certificate_sha256="ab12", dns_inconsistent=True)
    assert of_facts(found) == expected
    assert facts(str(fact) for fact in found) == expected


def test_every_recorded_web_verdict_gets_the_fields_its_strings_give() -> None:
    """On the snapshot of every web connectivity verdict of the test data, the fields the
    probe now reads from the facts are those the string reader gives for the same strings."""
    cases = json.loads((TESTDATA / "evidence_snapshot.json").read_text(encoding="utf-8"))
    assert len(cases) > 100
    for name, case in cases.items():
        analysis = case["analysis"]
        assert facts(analysis["evidence"]).to_wire() == analysis["evidence_fields"], name
