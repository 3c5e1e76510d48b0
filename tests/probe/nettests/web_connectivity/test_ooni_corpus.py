"""OONI's own QA measurements as an independent reference for the analysis.

Each file under ``tests/testdata/ooni_qa`` is a measurement OONI Probe made of one of its QA
scenarios (or of a curated real-world case), with the keys OONI's analysis recorded. Nobody on
this project wrote them. Two things must hold for every file:

(a) ``ooni_classic`` reproduces OONI's recorded ``blocking``, ``accessible``,
    ``dns_consistency`` and ``*_match`` keys from OONI's recorded observations alone;
(b) Kuzot's verdict is in the same class as OONI's ``blocking``
(``probe.nettests.web_connectivity.analysis.disagrees``),
    or the disagreement is a documented departure
    (``probe.nettests.web_connectivity.analysis.DEPARTURES``).

``ENGINE_CHANGES`` lists the only files whose recorded keys come from an older OONI engine
than the one ``ooni_classic`` restates, with the keys OONI's current engine gives instead.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from probe.nettests.web_connectivity import analysis, ooni_classic
from tests.helpers.paths import TESTDATA

CORPUS = TESTDATA / "ooni_qa"
FILES = sorted(CORPUS.glob("*/*.json"))
KEYS = ("blocking", "accessible", "dns_consistency", "body_length_match", "headers_match",
        "status_code_match", "title_match")

# Files recorded by an OONI engine older than the v0.5 classic analysis of probe-cli at the
# vendored commit, with the keys that analysis gives; OONI's own minipipeline output for the
# same files (``analysis_classic.json`` beside each measurement in probe-cli) agrees with them.
ENGINE_CHANGES: dict[str, tuple[str, dict[str, Any]]] = {
    "manual/8844.json": (
        "recorded by probe-cli 9a7567753 (2024-01-24), one commit before 'handle IP-addr URLs "
        "in classic linear analysis' (probe-cli #1472), which kept the endpoint of an "
        "address-literal URL: OONI's analysis now finds a final HTTPS page "
        "(HTTPFinalResponseSuccessTLSWithControl) and computes the HTTP diff",
        {"blocking": False, "accessible": True, "body_length_match": True,
         "headers_match": True, "status_code_match": True, "title_match": True}),
    "manual/dnsgoogle80.json": (
        "recorded by probe-cli d744eaa41 (2023-11-30), before the classic analysis engine "
        "(probe-cli #1420, 2023-12-01): the connects to :80 also timed out at the control "
        "(TCPConnectExpectedFailure), which the classic engine calls a site that is down",
        {"blocking": False, "accessible": False}),
    "manual/noipv6.json": (
        "recorded by probe-cli d744eaa41 (2023-11-30), before the classic analysis engine, "
        "which did not compute the HTTP diff of a final HTTPS page; OONI's analysis now has "
        "status match, shared uncommon headers and no different title words",
        {"headers_match": True, "status_code_match": True, "title_match": True}),
    "manual/youtube.json": (
        "recorded by probe-cli d744eaa41 (2023-11-30), before the classic analysis engine, "
        "as noipv6.json",
        {"headers_match": True, "status_code_match": True, "title_match": True}),
}


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _name(path: Path) -> str:
    return f"{path.parent.name}/{path.name}"


def test_the_corpus_is_there() -> None:
    assert len(FILES) >= 56
    assert set(ENGINE_CHANGES) <= {_name(p) for p in FILES}


@pytest.mark.parametrize("path", FILES, ids=_name)
def test_ooni_classic_reproduces_oonis_recorded_keys(path: Path) -> None:
    measurement = _load(path)
    recorded = measurement["test_keys"]
    got = ooni_classic.analyze(recorded, measurement["input"])
    expected = {key: recorded.get(key) for key in KEYS}
    if _name(path) in ENGINE_CHANGES:
        expected.update(ENGINE_CHANGES[_name(path)][1])
    assert {key: got[key] for key in KEYS} == expected


@pytest.mark.parametrize("path", FILES, ids=_name)
def test_kuzots_verdict_is_in_oonis_class(path: Path) -> None:
    measurement = _load(path)
    recorded = measurement["test_keys"]
    result = analysis.analyze(recorded, measurement["input"], measurement["probe_cc"])
    verdict = result["analysis"]
    assert verdict["analysis_version"] == analysis.ANALYSIS_VERSION
    if analysis.disagrees(recorded["blocking"], verdict["verdict"]):
        assert analysis.departure(recorded["blocking"], recorded["accessible"], verdict), (
            recorded["blocking"], verdict)


@pytest.mark.parametrize("engine", ["golang_net_resolver", "system"])
def test_oonis_other_names_for_the_system_resolver_read_the_same(engine: str) -> None:
    for name in ("generated/dnsBlockingBOGON.json", "generated/successWithHTTP.json",
                 "generated/websiteDownNXDOMAIN.json"):
        measurement = _load(CORPUS / name)
        renamed = copy.deepcopy(measurement["test_keys"])
        for query in renamed["queries"]:
            if query["engine"] == "getaddrinfo":
                query["engine"] = engine
        url = measurement["input"]
        assert ooni_classic.analyze(renamed, url) == \
            ooni_classic.analyze(measurement["test_keys"], url), name
        assert analysis.analyze(renamed, url)["analysis"] == \
            analysis.analyze(measurement["test_keys"], url)["analysis"], name


def test_the_page_is_judged_from_the_body_ooni_stores() -> None:
    """OONI keeps no body length or title beside the body: both come from the body, also
    when it is stored as base64 (bytes that are not UTF-8)."""
    import base64

    measurement = _load(CORPUS / "generated/successWithHTTP.json")
    keys = copy.deepcopy(measurement["test_keys"])
    response = keys["requests"][0]["response"]
    assert "body_length" not in response and "title" not in response
    text = response["body"]
    response["body"] = {"format": "base64", "data": base64.b64encode(text.encode()).decode()}
    got = ooni_classic.analyze(keys, measurement["input"])
    assert (got["body_length_match"], got["title_match"]) == (True, True)
    assert ooni_classic.response_body_length(response) == len(text.encode())
    assert ooni_classic.response_title(response) == ooni_classic.response_title(
        measurement["test_keys"]["requests"][0]["response"]) != ""


@pytest.mark.parametrize("name, mechanism", [
    ("generated/dnsBlockingNXDOMAIN.json", "nxdomain"),
    ("generated/dnsBlockingAndroidDNSCacheNoData.json", "nxdomain"),
    ("generated/dnsBlockingBOGON.json", "bogon"),
    ("generated/dnsHijackingToLocalhostWithHTTP.json", "bogon"),
    ("generated/dnsHijackingToLocalhostWithHTTPS.json", "bogon"),
])
def test_a_page_reached_through_another_resolver_does_not_unblock_the_user(
        name: str, mechanism: str) -> None:
    """OONI's probe also queries 1.1.1.1 and DoH; through their answer the page loads. The
    user's own (ISP) resolver lied, so for the user the site is blocked (R4, R12)."""
    measurement = _load(CORPUS / name)
    got = analysis.analyze(measurement["test_keys"], measurement["input"])["analysis"]
    assert (got["verdict"], got["layer"], got["mechanism"]) == ("blocked", "dns", mechanism)
    assert any(e.startswith("alternative_resolver_reached:") and ":200:" in e
               for e in got["evidence"]), got["evidence"]


def test_an_address_literal_keeps_its_own_endpoint_when_the_control_lists_it() -> None:
    """Kuzot's control puts the literal in ``dns.addrs`` (OONI's test helper leaves it empty):
    the endpoint is still the probe's own, and the page decides."""
    measurement = _load(CORPUS / "manual/8844.json")
    keys = copy.deepcopy(measurement["test_keys"])
    keys["control"]["dns"]["addrs"] = ["8.8.4.4"]
    got = analysis.analyze(keys, measurement["input"])
    assert (got["blocking"], got["accessible"]) == (False, True)
    assert got["dns_consistency"] is None
    assert got["analysis"]["verdict"] == "ok"
