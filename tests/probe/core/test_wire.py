"""OONI's forms on the wire (``probe.core.wire``) and the limits
``probe.nettests.web_connectivity.measure`` applies."""

from __future__ import annotations

import base64
import json
from typing import Any

from probe.core import wire
from probe.nettests.web_connectivity import measure as web
from tests.helpers import ooni_format


def test_a_body_is_text_when_utf8_and_base64_otherwise() -> None:
    assert wire.ooni_body("Доступ ограничен".encode()) == "Доступ ограничен"
    cp1251 = "Доступ ограничен".encode("cp1251")
    assert wire.ooni_body(cp1251) == {"format": "base64",
                                      "data": base64.b64encode(cp1251).decode()}
    assert wire.body_bytes(wire.ooni_body(cp1251)) == cp1251
    assert wire.body_bytes("ж") == "ж".encode()
    for broken in (None, 7, {"format": "base64", "data": "%%%"}, {"data": "AA=="}):
        assert wire.body_bytes(broken) == b""


def test_a_truncated_body_cut_inside_a_character_stays_text() -> None:
    cut = "жжж".encode()[:5]  # the last character is cut after its first byte
    assert wire.ooni_body(cut, truncated=True) == "жж"
    # Not truncated: the page itself is malformed, and every byte is kept.
    assert wire.ooni_body(cut) == {"format": "base64", "data": base64.b64encode(cut).decode()}
    # Truncated, but malformed before its end: every byte is kept too.
    assert isinstance(wire.ooni_body(b"\xff" + cut, truncated=True), dict)


def _request(body: Any) -> dict[str, Any]:
    return {"response": {"code": 200, "body": body, "body_is_truncated": False}}


def test_the_bodies_of_one_measurement_share_a_budget_final_page_first() -> None:
    final, hop = "ж" * 300, "a" * 300  # 600 and 300 bytes of JSON text
    requests = [_request(final), _request(hop), _request({"format": "base64",
                                                          "data": base64.b64encode(
                                                              b"\xff" * 300).decode()})]
    web.bound_bodies(requests, budget=800)
    sizes = [len(json.dumps(r["response"]["body"], ensure_ascii=False).encode()) - 2
             if isinstance(r["response"]["body"], str) else len(r["response"]["body"]["data"])
             for r in requests]
    assert requests[0]["response"]["body"] == final
    assert requests[0]["response"]["body_is_truncated"] is False
    assert sum(sizes) <= 800
    assert requests[1]["response"]["body"] == hop[:len(requests[1]["response"]["body"])]
    assert requests[1]["response"]["body_is_truncated"] is True
    assert requests[2]["response"]["body"] == {"format": "base64", "data": ""}
    assert requests[2]["response"]["body_is_truncated"] is True


def test_answers_get_the_asn_the_control_reported() -> None:
    queries = [{"answers": [{"answer_type": "A", "ipv4": "93.184.216.34"},
                            {"answer_type": "AAAA", "ipv6": "2606:2800:220:1::"},
                            {"answer_type": "A", "ipv4": "10.10.34.35"}]}]
    control = {"ip_info": {"93.184.216.34": {"asn": 15133, "flags": 3},
                           "2606:2800:220:1::": {"asn": None, "flags": 1},
                           "10.10.34.35": {"asn": 0, "flags": 4}}}
    web.add_answer_asns(queries, control)
    assert [a.get("asn") for a in queries[0]["answers"]] == [15133, None, None]
    web.add_answer_asns(queries, None)  # no control: nothing changes, nothing fails


def test_upgrade_renames_older_kuzot_keys_and_leaves_ooni_alone() -> None:
    ooni = ooni_format.read(ooni_format.corpus_files()[0])
    assert wire.upgrade(ooni) is ooni
    old = {
        "software_name": "kuzot", "test_name": "web_connectivity",
        "test_keys": {
            "queries": [{"engine": "udp", "rcode": "NXDOMAIN", "cnames": [], "ttl": 30,
                         "operation": "dns_round_trip", "failure": "dns_nxdomain_error",
                         "answers": [{"answer_type": "A", "ipv4": "10.0.0.1", "bogon": True}],
                         "late_answers": [{"rcode": "NOERROR", "answers": []}]},
                        {"engine": "udp", "rcode": "NOSUCHCODE"}],
            "tcp_connect": [{"status": {"success": False, "operation": "connect"}}],
            "tls_handshakes": [{"operation": "tls_handshake"}],
            "requests": [{"operation": None, "response": {
                "code": 200, "body_length": 5000, "body_sha256": "ab", "title": "T",
                "body_sample": "<html>"}}],
        },
    }
    new = wire.upgrade(old)
    assert old["test_keys"]["queries"][0]["rcode"] == "NXDOMAIN"  # the input is not changed
    query = new["test_keys"]["queries"][0]
    assert (query["rcode"], query["x_ttl"], query["x_operation"]) == (3, 30, "dns_round_trip")
    assert query["answers"][0] == {"answer_type": "A", "ipv4": "10.0.0.1", "x_bogon": True}
    assert query["x_late_answers"][0]["rcode"] == 0
    assert new["test_keys"]["queries"][1]["rcode"] == "NOSUCHCODE"  # unknown: kept as written
    assert new["test_keys"]["tcp_connect"][0]["status"]["x_operation"] == "connect"
    assert new["test_keys"]["tls_handshakes"][0] == {"x_operation": "tls_handshake"}
    response = new["test_keys"]["requests"][0]["response"]
    assert response == {"code": 200, "x_body_length": 5000, "x_body_sha256": "ab",
                        "x_title": "T", "body": "<html>", "body_is_truncated": True}
    assert wire.upgrade(new) == new


def test_the_probes_address_is_scrubbed_inside_a_base64_body_too() -> None:
    """A page that is not UTF-8 is stored in base64, where a text replacement cannot see the
    probe's address; both scrubbers decode it, scrub its bytes and encode it again."""
    from probe.core.scrub import SCRUBBED, scrub_value
    from probe.local.privacy import AddressBook

    own = "203.0.113.7"
    page = f"<p>Ваш адрес {own}</p>".encode("cp1251")
    body = wire.ooni_body(page)
    assert isinstance(body, dict)
    certificate = {"data": base64.b64encode(f"DER {own}".encode()).decode(),
                   "format": "base64"}
    m = {"test_keys": {"requests": [{"response": {"body": body}}],
                       "tls_handshakes": [{"peer_certificates": [certificate]}]}}
    expected = f"<p>Ваш адрес {SCRUBBED}</p>".encode("cp1251")

    scrubbed = scrub_value(m, {own})
    assert wire.body_bytes(scrubbed["test_keys"]["requests"][0]["response"]["body"]) == \
        expected
    # A certificate is not edited here (DER would break); probe.local.privacy blanks it whole.
    assert scrubbed["test_keys"]["tls_handshakes"][0]["peer_certificates"] == [certificate]

    book = AddressBook(b"test-key" * 4)
    book.learn(own)
    text = json.loads(book.scrub_measurement(json.dumps(m)))
    assert wire.body_bytes(text["test_keys"]["requests"][0]["response"]["body"]) == expected
    assert own not in base64.b64decode(
        text["test_keys"]["requests"][0]["response"]["body"]["data"]).decode("cp1251")
