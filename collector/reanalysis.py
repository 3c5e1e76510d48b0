"""The probe's verdict rules re-run on stored measurements (as ooni/data re-runs its analysis).

A verdict is a pure function of the recorded observations, versioned by ``analysis_version``
(``probe.nettests.web_connectivity.analysis.ANALYSIS_VERSION``). Two readers need it run again
on stored data:

* ``python -m collector reanalyze`` (``collector.reanalyze``) stores the verdict of the current
  rules for measurements recorded under older ones, so a rule fix reaches old data without
  waiting for volunteers to upgrade;
* detection (``collector.detect.extract``) needs the typed evidence
  (``analysis.evidence_fields``) that measurements recorded before it existed do not carry:
  it takes them from the re-run when the re-run reaches the same verdict, layer and mechanism
  as the one recorded, and never parses the recorded evidence strings.

What can be re-run: ``web_connectivity`` (``probe.nettests.web_connectivity.analysis.verdict``,
versioned), the throttling test (``probe.nettests.throttling.analysis``, with its default
thresholds) and the platform tests (their groups' recorded verdicts combined again,
``probe.nettests.platforms.analysis``). A
measurement that recorded no observations (a check that failed at ``top_level``), a ladder
reading, a censor trace or keys of a shape the rules cannot read give None.

This is the one collector module that imports the probe's analyses (beside ``probe.core``):
the rules run here exactly as on the probe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from probe.core import wire
from probe.core.evidence import Evidence, Fact, written
from probe.core.record import ModelError
from probe.nettests.platforms import analysis as platform_analysis
from probe.nettests.throttling import analysis as throttling_analysis
from probe.nettests.web_connectivity import analysis as web_analysis

# Tests whose verdict rules carry a version, with the current one.
VERSIONED = {"web_connectivity": web_analysis.ANALYSIS_VERSION}
PLATFORMS = frozenset({"telegram", "whatsapp", "signal", "facebook_messenger", "platform"})
_OBSERVATIONS = ("queries", "tcp_connect", "tls_handshakes", "requests")


def _web(measurement: Mapping[str, Any]) -> dict[str, Any] | None:
    keys = measurement.get("test_keys")
    url = measurement.get("input")
    if not isinstance(keys, Mapping) or not isinstance(url, str) or "failure" in keys or \
            not any(isinstance(keys.get(name), list) and keys[name] for name in _OBSERVATIONS):
        return None
    upgraded = wire.upgrade(dict(measurement))
    cc = measurement.get("probe_cc")
    return web_analysis.verdict(upgraded["test_keys"], url,
                                cc if isinstance(cc, str) and cc != "ZZ" else None)


def _throttling(keys: Mapping[str, Any]) -> dict[str, Any] | None:
    if not isinstance(keys.get("flows"), list) or "failure" in keys:
        return None
    result: dict[str, Any] = throttling_analysis.analyze(dict(keys))["analysis"]
    return result


def _platform(keys: Mapping[str, Any]) -> dict[str, Any] | None:
    groups = keys.get("x_groups")
    if not isinstance(groups, dict) or not groups:
        return None
    result = platform_analysis.platform_stated(dict(groups))
    endpoints = keys.get("x_endpoints") or []
    result["evidence"] += [Fact("injected_reset", e["target"]) for e in endpoints
                           if (e.get("x_injection") or {}).get("injected") is True]
    return written(result)


def rerun(measurement: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``analysis`` the current rules give for what ``measurement`` recorded, with its
    ``evidence_fields``; None when its test has no rules to re-run or nothing to run them
    on. Pure; never raises on a stored document of an unexpected shape."""
    test_name = measurement.get("test_name")
    keys = measurement.get("test_keys")
    if not isinstance(keys, Mapping):
        return None
    try:
        if test_name == "web_connectivity":
            result = _web(measurement)
        elif test_name == "throttling":
            result = _throttling(keys)
        elif test_name in PLATFORMS:
            result = _platform(keys)
        else:
            return None
    except Exception:  # recorded by any probe version: any shape may be stored
        return None
    return result  # written from the rules' facts, fields and all: no text is read back


def _same_verdict(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return all(a.get(k) == b.get(k) for k in ("verdict", "layer", "mechanism"))


def evidence_of(measurement: Mapping[str, Any]) -> Evidence:
    """The typed evidence of a stored measurement's verdict: its ``evidence_fields``, or for a
    measurement recorded before them, those of the re-run verdict when it agrees with the
    recorded one (verdict, layer, mechanism); empty otherwise (nothing known is claimed)."""
    keys = measurement.get("test_keys")
    analysis = keys.get("analysis") if isinstance(keys, Mapping) else None
    if not isinstance(analysis, Mapping):
        return Evidence()
    fields = analysis.get("evidence_fields")
    if fields is not None:
        try:
            return Evidence.from_wire(fields)
        except ModelError:  # validated at ingest; stored by an older collector, then
            return Evidence()
    again = rerun(measurement)
    if again is None or not _same_verdict(again, analysis):
        return Evidence()
    return Evidence.from_wire(again["evidence_fields"])
