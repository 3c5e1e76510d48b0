"""Censor location and injection fingerprints on tables of captured headers."""

from __future__ import annotations

from typing import Any

import pytest

from probe.nettests.censor_trace import analysis as ca

Record = dict[str, Any]
SERVER = {"src": "46.36.200.10", "ttl": 61, "ip_id": 0, "flags": "SA", "payload_length": 0}


def hop(ttl: int, icmp: str | None = None, response: str | None = None,
        packet: Record | None = None, failure: str | None = None) -> Record:
    return {"ttl": ttl, "icmp_from": icmp, "response": response, "response_packet": packet,
            "server_packet": SERVER, "failure": failure}


ROUTERS = ["10.77.1.1", "10.77.2.1", "10.77.3.1"]
CONTROL = [hop(1, ROUTERS[0]), hop(2, ROUTERS[1]), hop(3, ROUTERS[2]), hop(4, None, "data")]
RST_FROM_HOP2 = {"src": "46.36.200.10", "ttl": 63, "ip_id": 0, "flags": "RA",
                 "payload_length": 0}

LOCATE_CASES = [
    ("forwarding router resets: hop k answers ICMP, k+1 gets the reset",
     CONTROL, [hop(1, ROUTERS[0]), hop(2, ROUTERS[1]), hop(3, None, "reset", RST_FROM_HOP2)],
     ("blocked", "reset"), (2, ROUTERS[1], 3)),
    ("tap answers together with the hop's ICMP",
     CONTROL, [hop(1, ROUTERS[0]), hop(2, ROUTERS[1], "data", {**RST_FROM_HOP2, "flags": "PA"})],
     ("blocked", "blockpage"), (2, ROUTERS[1], 2)),
    ("forwarding router drops silently",
     CONTROL, [hop(1, ROUTERS[0]), hop(2, ROUTERS[1]), hop(3), hop(4), hop(5)],
     ("blocked", "timeout"), (2, ROUTERS[1], 3)),
    ("fin injection on the first hop", CONTROL, [hop(1, None, "fin", RST_FROM_HOP2)],
     ("blocked", "eof"), (0, None, 1)),
    ("no censor on the path", CONTROL,
     [hop(1, ROUTERS[0]), hop(2, ROUTERS[1]), hop(3, ROUTERS[2]), hop(4, None, "data")],
     ("ok", None), (None, None, None)),
    ("server resets the trigger only", CONTROL,
     [hop(1, ROUTERS[0]), hop(2, ROUTERS[1]), hop(3, ROUTERS[2]), hop(4, None, "reset")],
     ("blocked", "reset"), (None, None, None)),
    ("control never reached the server", [hop(1, ROUTERS[0]), hop(2), hop(3)],
     [hop(1, ROUTERS[0]), hop(2)], ("inconclusive", None), (None, None, None)),
    ("trigger trace cut short by connect failures", CONTROL,
     [hop(1, ROUTERS[0]), hop(2, failure="generic_timeout_error"),
      hop(3, failure="generic_timeout_error")],
     ("inconclusive", None), (None, None, None)),
]


@pytest.mark.parametrize(("case", "control", "trigger", "expected", "where"), LOCATE_CASES,
                         ids=[c[0] for c in LOCATE_CASES])
def test_locate(case: str, control: list[Record], trigger: list[Record],
                expected: tuple[str, str | None],
                where: tuple[int | None, str | None, int | None]) -> None:
    result = ca.locate(control, trigger, "http")
    analysis, censor = result["analysis"], result["censor"]
    assert (analysis["verdict"], analysis["mechanism"]) == expected, analysis
    assert (censor["hop"], censor["address"], censor["blocking_ttl"]) == where
    assert censor["server_hops"] == (4 if control is CONTROL else None)


def test_locate_marks_the_reset_injected_by_ttl() -> None:
    trigger = [hop(1, ROUTERS[0]), hop(2, ROUTERS[1]), hop(3, None, "reset", RST_FROM_HOP2)]
    injection = ca.locate(CONTROL, trigger, "tls")["censor"]["injection"]
    assert injection["injected"] is True
    assert "ttl_mismatch" in injection["evidence"] and "ttl:63" in injection["evidence"]


def pkt(ttl: int, ip_id: int) -> Record:
    return {"ttl": ttl, "ip_id": ip_id}


INJECTION_CASES = [
    ("two hops nearer, other ID counter", pkt(63, 4242), [pkt(61, 0)], True),
    ("two hops nearer, same ID style", pkt(63, 0), [pkt(61, 0)], True),
    ("one hop off only", pkt(62, 0), [pkt(61, 0)], None),
    ("same TTL, ID from another counter", pkt(61, 50000), [pkt(61, 100)], None),
    ("same TTL, ID close to the server's", pkt(61, 105), [pkt(61, 100)], False),
    ("same TTL, both zero", pkt(61, 0), [pkt(61, 0)], False),
    ("nothing to compare with", pkt(61, 0), [], None),
]


@pytest.mark.parametrize(("case", "suspect", "genuine", "injected"), INJECTION_CASES,
                         ids=[c[0] for c in INJECTION_CASES])
def test_injection(case: str, suspect: Record, genuine: list[Record],
                   injected: bool | None) -> None:
    assert ca.injection(suspect, genuine)["injected"] is injected


def test_dns_injection_marks_the_racing_answer() -> None:
    answers = [{"role": "control", "ttl": 60, "ip_id": 7},
               {"role": "target", "ttl": 62, "ip_id": 31337},
               {"role": "target", "ttl": 60, "ip_id": 9}]
    result = ca.dns_injection(answers)
    assert result["injected"] is True
    assert [a["injected"] for a in answers[1:]] == [True, False]
    assert ca.dns_injection(answers[:1])["injected"] is None
