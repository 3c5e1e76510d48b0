"""``Fact``: the evidence every kind's rules state, written as the same strings as before and
read into the same fields, without parsing the strings."""

from __future__ import annotations

import json

from probe.core.evidence import Evidence, Fact, facts, flag, measured, of_facts, written
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


def test_a_measured_number_is_typed_and_written_as_its_format_says() -> None:
    ratio = measured("goodput_ratio", 2.0)
    assert str(ratio) == "goodput_ratio:2" and ratio.value == 2.0
    assert str(measured("rates_ks_pvalue", 0.000123456, ".3g")) == "rates_ks_pvalue:0.000123"
    # The field keeps the number; the text rounds it for people.
    big = measured("goodput_ratio", 12345.67)
    assert str(big) == "goodput_ratio:12345.7"
    assert of_facts([big]).goodput_ratio == 12345.67


def test_written_gives_the_strings_and_the_fields_last() -> None:
    verdict = written({"verdict": "throttled", "evidence": [measured("handshake_ratio", 4.5),
                                                           flag("goodput_not_comparable")],
                       "analysis_version": 1})
    assert list(verdict) == ["verdict", "evidence", "analysis_version", "evidence_fields"]
    assert verdict["evidence"] == ["handshake_ratio:4.5", "goodput_not_comparable"]
    assert verdict["evidence_fields"]["handshake_ratio"] == 4.5
    assert verdict["evidence_fields"]["goodput_comparable"] is False


def test_every_recorded_verdict_of_the_other_kinds_gets_the_fields_its_strings_give() -> None:
    """As above, on the snapshot of the throttling, platform, censor trace and TCP
    reachability verdicts."""
    cases = json.loads((TESTDATA / "evidence_snapshot_kinds.json").read_text(encoding="utf-8"))
    checked = 0
    for name, case in cases.items():
        analysis = case.get("analysis", case) if isinstance(case, dict) else None
        if isinstance(analysis, dict) and "evidence_fields" in analysis:
            assert facts(analysis["evidence"]).to_wire() == analysis["evidence_fields"], name
            checked += 1
    assert checked > 50


def test_no_module_of_the_probe_reads_fields_from_evidence_text() -> None:
    """Only ``probe.core.evidence`` holds the text reader (for text-only analyses); every
    verdict of the probe is written from its facts."""
    import re
    from pathlib import Path

    import probe

    root = Path(probe.__file__).parent
    reader = re.compile(r"\bfacts\(|\bwith_fields\(")
    users = sorted(str(path.relative_to(root)) for path in root.rglob("*.py")
                   if reader.search(path.read_text(encoding="utf-8")))
    assert users == ["core/evidence.py", "core/measurement.py"]
