"""Measurements (OONI df-000 documents with Kuzot's ``analysis``) -> detector observations.

Pure: one stored measurement in, at most one observation out; malformed parts are skipped, not
raised (ingest already validated the envelope). Ingest runs it once and stores the result with
the row (``observed``), which detection reads instead of the body: a change to what it returns
for some measurement bumps ``observed.VERSION``. What is read:

* ``connectivity``: ``test_keys.analysis.online`` and ``summary``, and the ``rungs`` to name the
  cause (``ladder.classify``) -> ``LadderReading``.
* every other test (``web_connectivity``, ``throttling``, platform tests): the verdict, layer and
  mechanism of ``test_keys.analysis``; from its typed evidence (``evidence_fields``,
  ``probe.core.evidence``) a fingerprint (``blockpage:<name>``, or ``issuer:<name>`` when the
  mechanism is ``mitm``) and a target/baseline slowdown of the throttling test
  (``Evidence.slowdown_estimate``); the target's TLS handshake time from
  ``test_keys.tls_handshakes`` (``t - t0`` of the first successful handshake whose
  ``server_name`` is the input's host) -> ``Run``. The evidence strings are never parsed: a
  measurement recorded before ``evidence_fields`` existed gets them from its verdict re-run
  on its recorded observations (``collector.reanalysis.evidence_of``).
  The target of a test without an input is the test's name (a platform).

What the monitor's own failures produce is kept out of the evidence (the collector is often
the control and the last rung of the ladder, so its downtime reaches the probes' records):

* a run whose control failed (``test_keys.control_failure``, or ``control_unavailable`` in the
  evidence) is marked ``control_failed`` and never ``failed``;
* a ladder reading that is offline only because the collector did not answer (no foreign rung
  was tried, and no other rung failed) is no reading at all: it says nothing about the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from collector.detect import ladder
from collector.detect.model import LadderReading, Observation, Run, parse_time
from collector.reanalysis import evidence_of
from probe.core.evidence import Evidence

OUTCOMES = frozenset({"ok", "blocked", "down", "throttled", "inconclusive"})


def _handshake_seconds(keys: Mapping[str, Any], host: str | None) -> float | None:
    handshakes = keys.get("tls_handshakes")
    if not isinstance(handshakes, list):
        return None
    for handshake in handshakes:
        if not isinstance(handshake, Mapping) or handshake.get("failure") is not None:
            continue
        if host and handshake.get("server_name") not in (None, host):
            continue
        t0, t = handshake.get("t0"), handshake.get("t")
        if isinstance(t0, int | float) and isinstance(t, int | float) and t >= t0:
            return float(t - t0)
    return None


def _monitor_only(rungs: Mapping[str, Any], gateway_known: bool) -> bool:
    """Whether an offline reading rests on the collector's rung alone."""
    def ok(name: str) -> bool | None:
        rung = rungs.get(name)
        if not isinstance(rung, Mapping) or not isinstance(rung.get("reachable"), bool):
            return None
        return bool(rung["reachable"])

    if ok("collector") is not False or ok("foreign") is not None or not gateway_known:
        return False
    return all(ok(name) is not False for name in ("gateway", "resolver", "domestic"))


def _control_failed(keys: Mapping[str, Any], evidence: Evidence) -> bool:
    return bool(keys.get("control_failure")) or evidence.control_unavailable


def observation(m: Mapping[str, Any], probe_id: str) -> Observation | None:
    """The observation carried by measurement ``m`` submitted by ``probe_id``, if any."""
    try:
        t = parse_time(str(m["measurement_start_time"]))
        cc, asn, test_name = str(m["probe_cc"]), str(m["probe_asn"]), str(m["test_name"])
    except (KeyError, ValueError):
        return None
    keys = m.get("test_keys")
    if not isinstance(keys, Mapping):
        return None
    analysis = keys.get("analysis")
    analysis = analysis if isinstance(analysis, Mapping) else {}
    if test_name == "connectivity":
        online = analysis.get("online")
        if not isinstance(online, bool):
            return None
        rungs = keys.get("rungs")
        gateway_known = bool(keys.get("gateway_known", True))
        if not online and isinstance(rungs, Mapping) and _monitor_only(rungs, gateway_known):
            return None
        if isinstance(rungs, Mapping) and rungs:
            cause = ladder.classify(rungs, bool(keys.get("gateway_known", True)), online)
        else:
            cause = ladder.cause_from_summary(str(analysis.get("summary") or ""), online)
        return LadderReading(probe_id=probe_id, cc=cc, asn=asn, t=t, online=online, cause=cause)
    verdict = analysis.get("verdict")
    outcome = verdict if verdict in OUTCOMES else "inconclusive"
    given = m.get("input")
    target = given if isinstance(given, str) and given else test_name
    try:
        host = urlsplit(target).hostname if "://" in target else None
    except ValueError:  # not a URL after all ("http://[x/"): no host to match handshakes to
        host = None
    layer = analysis.get("layer") if isinstance(analysis.get("layer"), str) else None
    mechanism = analysis.get("mechanism") if isinstance(analysis.get("mechanism"), str) \
        else None
    evidence = evidence_of(m)
    probe_failed = evidence.failed_layer in ("dns", "tcp", "tls") or \
        bool(keys.get("http_experiment_failure"))
    control_failed = _control_failed(keys, evidence)
    return Run(
        probe_id=probe_id, cc=cc, asn=asn, target=target, t=t,
        outcome=outcome,  # type: ignore[arg-type]
        layer=layer, mechanism=mechanism, fingerprint=evidence.fingerprint(mechanism),
        handshake=_handshake_seconds(keys, host), slowdown=evidence.slowdown_estimate(),
        failed=outcome == "blocked" or (outcome != "down" and probe_failed
                                        and not control_failed),
        control_failed=control_failed)
