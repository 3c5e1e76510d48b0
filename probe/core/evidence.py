"""The facts a verdict rests on, as typed fields (``analysis.evidence_fields``).

A verdict's ``evidence`` is a list of short ``key:value`` strings (design §2), written for
people and for OONI-style tooling. Programs need the facts themselves: the detection engine
asks whether the probe failed a step, whether the control was usable, which blockpage or
interception issuer matched, how much slower a throttled target was. ``Evidence`` carries those
as typed fields beside the strings, in the same ``analysis`` object, so no reader ever parses
the strings back.

Every kind of test states its verdict's facts as ``Fact`` values (a key and a typed value, or
a bare flag; ``measured`` for a number): ``str(fact)`` is the evidence string and
``of_facts`` reads the fields from the facts themselves, with this module's closed table of
keys (``KEYS``); ``written`` gives both, so no verdict of the probe is parsed back from its
text. The fields are part of the versioned analysis, like the strings. The collector only
reads the fields (``Evidence.from_wire``), and for measurements recorded before the fields
existed re-runs the pure analysis on the recorded observations (``collector/reanalysis.py``).

``facts(evidence)`` reads the same fields from the text, for an analysis that exists only as
text: one written by hand (test fixtures, benchmarks) or stored before the fields existed
(``bench/detection_catchup.py`` upgrades such a store). No verdict of the probe goes through
it (``tests/probe/core/test_evidence_facts.py`` checks that its modules never call it).

Wire form (additive key of ``test_keys.analysis``; every field is always written)::

    "evidence_fields": {
      "failed_layer": "dns" | "tcp" | "tls" | "http" | null,  # the probe's own failed step
      "failure": "<OONI failure string>" | null,                # ...and how it failed
      "control_unavailable": bool,   # the control failed or was missing: nothing to compare
      "control_failure": "<failure>" | null,
      "blockpage": "<fingerprint name>" | null,   # a known blockpage matched
      "confirmed": "<fingerprint name>" | null,   # a deterministic fingerprint matched
      "issuer": "<certificate issuer>" | null,    # the issuer the probe was shown (tls)
      "certificate_sha256": "<hex>" | null,
      "dns_inconsistent": bool,
      "slowdown": number | null,         # target/baseline slowdown, > 1 is slower
      "goodput_ratio": number | null,    # baseline/target goodput (throttling test)
      "handshake_ratio": number | null,  # target/baseline TLS handshake time
      "goodput_comparable": bool | null  # false: transfers too short to compare goodput
    }
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Self

from probe.core.record import ModelError, WireRecord, read

LAYERS = ("dns", "tcp", "tls", "http")
RATIOS = ("slowdown", "goodput_ratio", "handshake_ratio")
# The printed keys this module reads, each with the field it fills.
KEYS = {
    **{f"probe_{layer}": "failed_layer, failure" for layer in LAYERS},
    "control_failure": "control_unavailable, control_failure",
    "control": "control_unavailable (control:missing)",
    "blockpage": "blockpage",
    "confirmed": "confirmed",
    "issuer": "issuer",
    "sha256": "certificate_sha256",
    "dns_inconsistent": "dns_inconsistent",
    **{ratio: ratio for ratio in RATIOS},
    "goodput_not_comparable": "goodput_comparable",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence(WireRecord):
    """Typed facts of one verdict (see the module docstring for each field)."""

    failed_layer: str | None = None
    failure: str | None = None
    control_unavailable: bool = False
    control_failure: str | None = None
    blockpage: str | None = None
    confirmed: str | None = None
    issuer: str | None = None
    certificate_sha256: str | None = None
    dns_inconsistent: bool = False
    slowdown: float | None = None
    goodput_ratio: float | None = None
    handshake_ratio: float | None = None
    goodput_comparable: bool | None = None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], path: str = "$") -> Self:
        """As ``WireRecord.from_wire``, and ratios must be positive, layers known."""
        record = read(cls, data, path)
        for name in RATIOS:
            value = getattr(record, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ModelError(f"{path}.{name}: a positive number or null")
        if record.failed_layer is not None and record.failed_layer not in LAYERS:
            raise ModelError(f"{path}.failed_layer: one of {', '.join(LAYERS)} or null")
        return record

    def slowdown_estimate(self) -> float | None:
        """How many times slower the target was than its baseline: ``slowdown`` when given,
        else the larger of the handshake ratio and the goodput ratio (the latter only when
        the transfers were long enough to compare)."""
        if self.slowdown is not None:
            return self.slowdown
        values = [self.handshake_ratio]
        if self.goodput_comparable is not False:
            values.append(self.goodput_ratio)
        found = [v for v in values if v is not None]
        return max(found) if found else None

    def fingerprint(self, mechanism: str | None) -> str | None:
        """A deterministic fingerprint as the events name it: ``blockpage:<name>``, or
        ``issuer:<name>`` for an interception (``mitm``)."""
        if self.blockpage is not None:
            return f"blockpage:{self.blockpage}"
        if mechanism == "mitm" and self.issuer is not None:
            return f"issuer:{self.issuer}"
        return None


Value = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Fact:
    """One fact a verdict rests on, as the rules state it: a key and its value, or a bare
    flag (``dns_inconsistent``). ``str(fact)`` is the ``key:value`` text of ``evidence``,
    written for people; programs read ``key`` and ``value`` (``of_facts``)."""

    key: str
    value: Value = None
    bare: bool = False
    shown: str | None = None  # the value's text when not ``str(value)`` (``measured``)

    def __str__(self) -> str:
        if self.bare:
            return self.key
        return f"{self.key}:{self.value if self.shown is None else self.shown}"


def flag(key: str) -> Fact:
    """A fact without a value (``dns_inconsistent``, ``control_answers_loopback``)."""
    return Fact(key, bare=True)


def measured(key: str, value: float, spec: str = "g") -> Fact:
    """A number as a fact: typed ``value`` for programs, written with ``spec`` for people
    (``goodput_ratio:2.5``, ``rates_ks_pvalue:0.00012``)."""
    return Fact(key, value, shown=format(value, spec))


def written(found: Mapping[str, Any]) -> dict[str, Any]:
    """A verdict whose ``evidence`` is ``Fact`` values as it is recorded: the facts written
    as their ``key:value`` text (``evidence``) and read into ``evidence_fields`` (``of_facts``:
    no text is parsed back), which come last."""
    stated: list[Fact] = list(found["evidence"])
    return {**found, "evidence": [str(fact) for fact in stated],
            "evidence_fields": of_facts(stated).to_wire()}


def of_facts(found: Iterable[Fact]) -> Evidence:
    """The typed fields of a verdict's facts, read from their keys and values (nothing is
    parsed): the same fields ``facts`` reads from their printed text. Where a key repeats the
    first fact wins (a verdict names its decisive step first), except a ratio (the last, the
    overall one) and a failed step (the probe's own connection, dns, tcp or tls, before
    http). Keys outside ``KEYS`` are for people only and fill no field."""
    fields: dict[str, Any] = {}
    comparable: bool | None = None
    for fact in found:
        key, shown = fact.key, None if fact.bare else _name(str(fact.value))
        if fact.bare:
            if key == "dns_inconsistent":
                fields["dns_inconsistent"] = True
            elif key == "goodput_not_comparable":
                comparable = False
        elif key.startswith("probe_") and key[6:] in LAYERS:
            layer = key[6:]
            if "failed_layer" not in fields or (fields["failed_layer"] == "http" != layer):
                fields["failed_layer"], fields["failure"] = layer, shown
        elif key == "control_failure":
            fields["control_unavailable"] = True
            fields.setdefault("control_failure", shown)
        elif key == "control" and fact.value == "missing":
            fields["control_unavailable"] = True
        elif key in ("blockpage", "confirmed"):
            fields.setdefault(key, shown)
        elif key == "issuer" and shown is not None:
            fields.setdefault("issuer", shown)
        elif key == "sha256":
            fields.setdefault("certificate_sha256", shown)
        elif key in RATIOS and isinstance(fact.value, int | float) and \
                not isinstance(fact.value, bool) and math.isfinite(fact.value) and \
                fact.value > 0:
            fields[key] = float(fact.value)
            if key == "goodput_ratio" and comparable is None:
                comparable = True
    return Evidence(**fields, goodput_comparable=comparable)


def _ratio(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value > 0 else None


def _name(text: str) -> str | None:
    return None if text in ("", "None") else text


def facts(evidence: Iterable[str]) -> Evidence:
    """The typed fields of an ``evidence`` list that exists only as text (see the module
    docstring: hand-written analyses, measurements stored before the fields existed).

    The first fact of a key wins where a key repeats (a verdict names its decisive step
    first), except a ratio (the last, the overall one) and a failed step (the probe's own
    connection, dns, tcp or tls, before http). Keys outside ``KEYS`` are for people only
    and fill no field."""
    found: dict[str, Any] = {}
    comparable: bool | None = None
    for item in evidence:
        key, sep, value = item.partition(":")
        if key.startswith("probe_") and key[6:] in LAYERS and sep:
            # A failure of the probe's own connection (dns, tcp, tls) outranks an HTTP one.
            layer = key[6:]
            if "failed_layer" not in found or (found["failed_layer"] == "http" != layer):
                found["failed_layer"], found["failure"] = layer, _name(value)
        elif key == "control_failure" and sep:
            found["control_unavailable"] = True
            found.setdefault("control_failure", _name(value))
        elif item == "control:missing":
            found["control_unavailable"] = True
        elif key in ("blockpage", "confirmed") and sep:
            found.setdefault(key, _name(value))
        elif key == "issuer" and sep and _name(value) is not None:
            found.setdefault("issuer", value)
        elif key == "sha256" and sep:
            found.setdefault("certificate_sha256", _name(value))
        elif item == "dns_inconsistent":
            found["dns_inconsistent"] = True
        elif key in RATIOS and sep:
            ratio = _ratio(value)
            if ratio is not None:
                found[key] = ratio
                if key == "goodput_ratio" and comparable is None:
                    comparable = True
        elif item == "goodput_not_comparable":
            comparable = False
    return Evidence(**found, goodput_comparable=comparable)


def with_fields(analysis: Mapping[str, Any]) -> dict[str, Any]:
    """``analysis`` with ``evidence_fields`` (from its ``evidence``) added after its other keys.

    An analysis without an evidence list (the ladder's) or that has the fields already (every
    verdict of the probe: ``written``) comes back as it was; only a text-only one is read
    with ``facts``."""
    evidence = analysis.get("evidence")
    if "evidence_fields" in analysis or not isinstance(evidence, list) or \
            not all(isinstance(item, str) for item in evidence):
        return dict(analysis)
    return {**analysis, "evidence_fields": facts(evidence).to_wire()}
