"""Where the censor is and which packets it forged: pure functions over captured headers.

No I/O, no clock; inputs are the records ``probe.netx.packet`` writes.

*Injection fingerprints.* A reset or DNS answer sent by a middlebox carries the middlebox's IP
header: a different remaining TTL (it is fewer or more hops away than the server) and an IP ID
from another counter. We compare with the real server's packets on the same path (its
SYN-ACK; the resolver's answer to a harmless name). A TTL difference of two or more is strong
evidence, one is weak (paths can change by a hop); an IP ID from another counter (zero against
non-zero, or far from the server's) only supports a TTL difference, never replaces it.

*Censor location* (CenTrace). With TTL ``t`` the request expires at hop ``t``, whose router
answers ICMP time-exceeded. A filtering router at hop ``k`` that acts on forwarded packets sees
the request first with ``t = k + 1``: the reset/blockpage comes back with no ICMP from hop
``k + 1``, or nothing comes back at all (a drop), while hops ``1..k`` answered. A device that
acts before the TTL check (a tap, a pre-routing hook) answers at ``t = k`` together with hop
``k``'s ICMP. So the censor is at ``blocking_ttl`` if that step also drew an ICMP, otherwise
at ``blocking_ttl - 1``. The harmless control trace gives the server's distance: a response
arriving from nearer than that is not the server's.
"""

from __future__ import annotations

from typing import Any

from probe.core.evidence import Fact, flag, written
from probe.netx.packet import SERVER_ANSWERS as _SERVER_ANSWERS
from probe.netx.packet import server_distance as server_distance

Record = dict[str, Any]

# The version of these rules, carried by every verdict as ``analysis_version`` (declared to the
# registry by this kind's ``nettest.py``): bump it whenever a rule changes what any
# measurement's verdict, layer, mechanism or evidence would be (see the README).
ANALYSIS_VERSION = 1

_MECHANISM = {"reset": "reset", "fin": "eof", "data": "blockpage"}


def verdict(kind: str, layer: str | None = None, mechanism: str | None = None,
             confidence: float = 0.0, evidence: list[Fact] | None = None) -> Record:
    """A verdict with its facts, still typed: ``probe.core.evidence.written`` writes them."""
    return {"verdict": kind, "layer": layer, "mechanism": mechanism,
            "confidence": round(confidence, 2), "evidence": evidence or []}


def injection(suspect: Record, genuine: list[Record]) -> Record:
    """Is ``suspect`` (TTL, IP ID of a reset or answer) from the same sender as ``genuine``?

    Returns ``injected`` (True, False, or None without a genuine packet to compare with),
    ``confidence`` and ``evidence``.
    """
    if not genuine:
        return {"injected": None, "confidence": 0.0, "evidence": ["no_server_packet"]}
    ttls = sorted({int(g["ttl"]) for g in genuine})
    gap = min(abs(int(suspect["ttl"]) - t) for t in ttls)
    evidence = [f"ttl:{suspect['ttl']}", f"server_ttl:{','.join(map(str, ttls))}"]
    ids = [int(g["ip_id"]) for g in genuine]
    suspect_id = int(suspect["ip_id"])
    id_mismatch = False
    if all(i == 0 for i in ids) != (suspect_id == 0):
        id_mismatch = True
    elif suspect_id and all(i for i in ids):
        id_mismatch = min((suspect_id - i) % 65536 for i in ids) > 2048
    evidence += [f"ip_id:{suspect_id}", f"server_ip_id:{','.join(map(str, ids))}"]
    if gap >= 2:
        return {"injected": True, "confidence": 0.9 if id_mismatch else 0.8,
                "evidence": ["ttl_mismatch", *evidence, *(["ip_id_mismatch"] if id_mismatch
                                                          else [])]}
    if gap == 1 or id_mismatch:
        # Weak alone: paths change by a hop, and Linux sends SYN-ACKs with IP ID 0 but data
        # and resets from a per-flow counter, so an IP ID difference is no proof.
        return {"injected": None, "confidence": 0.3,
                "evidence": ["ttl_mismatch" if gap else "ip_id_mismatch", *evidence]}
    return {"injected": False, "confidence": 0.7, "evidence": ["same_sender", *evidence]}


def dns_injection(answers: list[Record]) -> Record:
    """Mark answers to the target name whose IP header differs from the control answers'."""
    control = [a for a in answers if a.get("role") == "control"]
    target = [a for a in answers if a.get("role") == "target"]
    if not control or not target:
        return {"injected": None, "evidence": ["no_answer_to_compare"]}
    marked = []
    for answer in target:
        result = injection(answer, control)
        answer["injected"] = result["injected"]
        answer["evidence"] = result["evidence"]
        marked.append(result["injected"])
    injected_count = sum(1 for m in marked if m is True)
    evidence = [f"answers:{len(target)}", f"injected:{injected_count}"]
    if injected_count:
        return {"injected": True, "evidence": evidence}
    if all(m is False for m in marked):
        return {"injected": False, "evidence": evidence}
    return {"injected": None, "evidence": evidence}


def locate(control_hops: list[Record], trigger_hops: list[Record], layer: str) -> Record:
    """The censor's hop and address from a control and a trigger trace.

    Returns ``{"censor": {...}, "analysis": {...}}``, the analysis as it is recorded
    (``evidence`` and ``evidence_fields``); ``layer`` is the layer of the trigger (``http``
    for a Host header, ``tls`` for an SNI).
    """
    located = locate_stated(control_hops, trigger_hops, layer)
    return {**located, "analysis": written(located["analysis"])}


def locate_stated(control_hops: list[Record], trigger_hops: list[Record],
                  layer: str) -> Record:
    """As ``locate``, the analysis's facts still typed (for the measurement to add its own)."""
    distance = server_distance(control_hops)
    addresses: dict[int, str] = {}
    for step in (*control_hops, *trigger_hops):
        if step.get("icmp_from") and step.get("ttl") is not None:
            addresses.setdefault(int(step["ttl"]), str(step["icmp_from"]))
    censor: Record = {"hop": None, "address": None, "blocking_ttl": None,
                      "server_hops": distance, "injection": None}
    evidence = [Fact("server_hops", distance)]
    if distance is None:
        return {"censor": censor, "analysis": verdict(
            "inconclusive", evidence=[flag("control_trace_did_not_reach_server")])}
    first = next((h for h in trigger_hops if h.get("response") in ("reset", "fin", "data")),
                 None)
    if first is not None and int(first["ttl"]) < distance:
        ttl = int(first["ttl"])
        hop = ttl if first.get("icmp_from") else ttl - 1
        censor.update(hop=hop, address=addresses.get(hop), blocking_ttl=ttl)
        server = next((h["server_packet"] for h in trigger_hops if h.get("server_packet")),
                      None)
        if first.get("response_packet") and server:
            censor["injection"] = injection(first["response_packet"], [server])
        mechanism = _MECHANISM[first["response"]]
        evidence = [Fact("censor_hop", hop), Fact("censor_address", censor["address"]),
                    Fact("blocking_ttl", ttl), *evidence]
        return {"censor": censor, "analysis": verdict("blocked", layer, mechanism, 0.9,
                                                       evidence)}
    if first is not None or any(h.get("response") == "ack" for h in trigger_hops):
        # The trigger got as far as the server did: nothing on the path acted on it.
        reached = first or next(h for h in trigger_hops if h.get("response") == "ack")
        control_answer = next(h["response"] for h in control_hops
                              if h.get("response") in _SERVER_ANSWERS)
        evidence.append(Fact("trigger_answer", f"{reached['response']}@{reached['ttl']}"))
        if reached["response"] in ("reset", "fin") and control_answer in ("data", "ack"):
            return {"censor": censor, "analysis": verdict(
                "blocked", layer, _MECHANISM[reached["response"]], 0.5,
                [flag("censor_at_or_beyond_server_hop"), *evidence])}
        return {"censor": censor, "analysis": verdict("ok", confidence=0.8,
                                                       evidence=evidence)}
    probed = [int(h["ttl"]) for h in trigger_hops if h.get("failure") is None]
    if not probed or max(probed) < distance:
        failure = next((h["failure"] for h in trigger_hops if h.get("failure")), None)
        return {"censor": censor, "analysis": verdict(
            "inconclusive", layer, evidence=[Fact("trigger_trace_incomplete", failure), *evidence])}
    answered = [int(h["ttl"]) for h in trigger_hops if h.get("icmp_from")]
    hop = max(answered) if answered else 0
    censor.update(hop=hop, address=addresses.get(hop), blocking_ttl=hop + 1)
    evidence = [Fact("censor_hop", hop), Fact("censor_address", censor["address"]),
                flag("silent_drop"), *evidence]
    return {"censor": censor, "analysis": verdict("blocked", layer, "timeout", 0.8, evidence)}
