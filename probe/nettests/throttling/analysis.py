"""The verdict of one throttling measurement: a pure function of its flows.

No I/O, no clock. Inputs are the flow records of ``probe.nettests.throttling.measure`` (target and
co-hosted baseline fetched back to back, several rounds, and optionally the SNI A/B flows against
the collector). Methods and numbers follow the detection notes, section 6.4, and OONI dd-007:

* per round, the ratio of baseline to target goodput and of target to baseline TLS handshake
  time; the medians over rounds decide, with 3 as the warning and 10 as OONI's "extreme";
* a goodput difference counts only if it is also significant: the per-interval rates of the
  target and of the baseline differ by a two-sample KS test at p < 0.01 (fast transfers give a
  handful of samples and can never pass, so timing noise on a fast path is not "throttling");
* a policer's plateau (per-interval rate nearly constant at a low rate) is reported as evidence;
* the SNI A/B test decides by Wehe's rule (``probe.nettests.throttling.differentiation``): same
  server, same bytes, only the SNI differs, so a difference there is SNI-based throttling;
* a baseline that is slow too means the path is slow, not the target: "generalized slowness"
  is reported as ``inconclusive`` and never as targeted throttling. A single vantage cannot
  tell a throttled country link from a slow home line; the collector judges that across probes.

Mechanisms: ``sni_throttle`` when the A/B test shows differentiation against the target's SNI,
or when target and baseline share one address (only the name differs) and the A/B test did not
clear the SNI; ``ip_throttle`` when the target, on another address than its baseline, is slower
while the A/B test shows no SNI differentiation. Otherwise the mechanism stays null.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from probe.core.evidence import Fact, flag, measured, written
from probe.nettests.throttling.differentiation import decide
from probe.nettests.throttling.ks import ks_2samp
from probe.netx import bytetime

Record = dict[str, Any]

# The version of these rules, carried by every verdict as ``analysis_version`` (declared to the
# registry by this kind's ``nettest.py``): bump it whenever a rule changes what any
# measurement's verdict, layer, mechanism or evidence would be (see the README).
ANALYSIS_VERSION = 1

MIN_COMPARABLE_BYTES = 64 * 1024
MIN_COMPARABLE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Decision parameters; defaults from detection notes 6.4 and Wehe."""

    ratio_warning: float = 3.0
    ratio_extreme: float = 10.0
    alpha: float = 0.01
    handshake_slow_s: float = 1.0
    slow_bps: float = 1_000_000.0  # a baseline below this means the whole path is slow
    goodput_window: int = bytetime.GOODPUT_WINDOW


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _duration(record: Record | None) -> float | None:
    if not record or record.get("t") is None or record.get("t0") is None:
        return None
    return float(record["t"]) - float(record["t0"])


def flow_metrics(flow: Record, window: int = bytetime.GOODPUT_WINDOW) -> Record:
    """Timings, goodput, per-interval rates, plateau and stalls of one flow record."""
    connect = flow.get("tcp_connect") or {}
    handshake = flow.get("tls_handshake") or {}
    request = flow.get("request") or {}
    connect_ok = bool((connect.get("status") or {}).get("success"))
    handshake_ok = bool(handshake) and handshake.get("failure") is None
    samples = [(float(t), int(n)) for t, n in flow.get("samples") or []]
    start = flow.get("request_t0")
    curve: list[bytetime.Sample] = []
    if start is not None:
        curve = bytetime.since(samples, float(start), bytetime.bytes_at(samples, float(start)))
    transferred = curve[-1][1] if curve else 0
    duration = curve[-1][0] - curve[0][0] if len(curve) > 1 else None
    rates = bytetime.interval_rates(curve)
    plateau = bytetime.plateau(bytetime.interval_rates(curve, bytetime.PLATEAU_WINDOW))
    ttfb = None
    if request.get("x_ttfb") is not None and start is not None:
        ttfb = float(request["x_ttfb"]) - float(start)
    return {
        "connect_s": _round(_duration(connect)) if connect_ok else None,
        "tls_handshake_s": _round(_duration(handshake)) if handshake_ok else None,
        "ttfb_s": _round(ttfb),
        "bytes": transferred,
        "transfer_s": _round(duration),
        "goodput_bps": _round(bytetime.goodput(curve, window), 0) if transferred else None,
        "rates_bps": [round(r) for r in rates],
        "plateau": {"found": plateau.found, "rate_bps": _round(plateau.rate_bps, 0),
                    "cv": _round(plateau.cv), "intervals": plateau.intervals},
        "stalls": bytetime.stalls(curve),
        "slow": bool(flow.get("x_slow")),
        "comparable": transferred >= MIN_COMPARABLE_BYTES or (
            duration is not None and duration >= MIN_COMPARABLE_SECONDS and transferred > 0),
    }


def _rounds(flows: Sequence[Record]) -> dict[int, dict[str, Record]]:
    by_round: dict[int, dict[str, Record]] = {}
    for flow in flows:
        by_round.setdefault(int(flow.get("round", 0)), {})[str(flow.get("role"))] = flow
    return by_round


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def _ks_pvalue(a: Sequence[float], b: Sequence[float]) -> float | None:
    a = [x for x in a if x > 0]
    b = [x for x in b if x > 0]
    if not a or not b:
        return None
    return ks_2samp(a, b).pvalue


def pair_summary(flows: Sequence[Record], thresholds: Thresholds = Thresholds()) -> Record:
    """Medians, per-round ratios and the significance of target vs baseline."""
    metrics = {id(f): flow_metrics(f, thresholds.goodput_window) for f in flows}
    goodput_ratios: list[float | None] = []
    handshake_ratios: list[float | None] = []
    comparable = True
    rounds = 0
    for pair in _rounds(flows).values():
        target, baseline = pair.get("target"), pair.get("baseline")
        if target is None or baseline is None:
            continue
        mt, mb = metrics[id(target)], metrics[id(baseline)]
        if mt["goodput_bps"] is None or mb["goodput_bps"] is None:
            continue
        rounds += 1
        # A tiny baseline object (a favicon) says how fast a handshake is, not a transfer.
        comparable = comparable and bool(mt["comparable"] and mb["comparable"])
        goodput_ratios.append(_ratio(mb["goodput_bps"], mt["goodput_bps"]))
        handshake_ratios.append(_ratio(mt["tls_handshake_s"], mb["tls_handshake_s"]))

    def role(name: str) -> list[Record]:
        return [metrics[id(f)] for f in flows if f.get("role") == name]

    target_m, baseline_m = role("target"), role("baseline")
    target_comparable = bool(target_m) and all(m["comparable"] for m in target_m
                                               if m["goodput_bps"] is not None)
    baseline_comparable = bool(baseline_m) and all(m["comparable"] for m in baseline_m
                                                   if m["goodput_bps"] is not None)
    target_rates = [r for m in target_m for r in m["rates_bps"]]
    baseline_rates = [r for m in baseline_m for r in m["rates_bps"]]
    plateaus = [m["plateau"] for m in target_m if m["plateau"]["found"]]
    addresses = {str(f.get("address", "")).rsplit(":", 1)[0] for f in flows
                 if f.get("role") in ("target", "baseline")}
    return {
        "rounds": rounds,
        "target_goodput_bps": _round(_median([m["goodput_bps"] for m in target_m]), 0),
        "baseline_goodput_bps": _round(_median([m["goodput_bps"] for m in baseline_m]), 0),
        "goodput_ratio": _round(_median(goodput_ratios), 2),
        "goodput_comparable": comparable and rounds > 0,
        "target_comparable": target_comparable,
        "baseline_comparable": baseline_comparable,
        "rates_ks_pvalue": _ks_pvalue(target_rates, baseline_rates),
        "target_tls_handshake_s": _round(_median([m["tls_handshake_s"] for m in target_m])),
        "baseline_tls_handshake_s": _round(_median([m["tls_handshake_s"] for m in baseline_m])),
        "handshake_ratio": _round(_median(handshake_ratios), 2),
        "target_ttfb_s": _round(_median([m["ttfb_s"] for m in target_m])),
        "baseline_ttfb_s": _round(_median([m["ttfb_s"] for m in baseline_m])),
        "target_plateau_bps": _round(_median([p["rate_bps"] for p in plateaus]), 0),
        "target_plateau_flows": len(plateaus),
        "target_flows": len(target_m),
        "target_slow_flows": sum(1 for m in target_m if m["slow"]),
        "same_address": len(addresses) == 1 and bool(target_m) and bool(baseline_m),
        "target_failures": sorted({str(f["failure"]) for f in flows
                                   if f.get("role") == "target" and f.get("failure")
                                   and not f.get("x_slow")}),
        "baseline_failures": sorted({str(f["failure"]) for f in flows
                                     if f.get("role") == "baseline" and f.get("failure")
                                     and not f.get("x_slow")}),
    }


def ab_summary(ab: Record | None, thresholds: Thresholds = Thresholds()) -> Record | None:
    """Wehe's decision over the A/B flows, or None when the A/B test did not run."""
    if not ab:
        return None
    flows = ab.get("flows") or []
    expected = ab.get("certificate_sha256")
    presented = set()
    for f in flows:
        handshake = f.get("tls_handshake") or {}
        if handshake and handshake.get("failure") is None:
            leaf = (handshake.get("x_certificates") or [{}])[0]
            presented.add(leaf.get("sha256"))
    presented.discard(None)
    certificate_ok = not expected or presented <= {expected}
    original = [r for f in flows if f.get("role") == "ab_original"
                for r in flow_metrics(f, thresholds.goodput_window)["rates_bps"]]
    control = [r for f in flows if f.get("role") == "ab_control"
               for r in flow_metrics(f, thresholds.goodput_window)["rates_bps"]]
    result = decide(original, control, alpha=thresholds.alpha).as_record()
    result["original_median_bps"] = _round(_median(original), 0)
    result["control_median_bps"] = _round(_median(control), 0)
    result["certificate_ok"] = certificate_ok
    result.update(_ab_handshakes(flows, thresholds))
    result["original_failures"] = sorted({str(f["failure"]) for f in flows
                                          if f.get("role") == "ab_original"
                                          and f.get("failure") and not f.get("x_slow")})
    return result


def _ab_handshakes(flows: Sequence[Record], thresholds: Thresholds) -> Record:
    """Handshake times of the two A/B sides. A throttle that bites during the handshake (the
    KZ 2022-23 signature: handshakes over 2 s) shows here even when the transfer rates do not:
    SNI-triggered when every original handshake is slower than every control handshake, by
    the warning ratio at the median, and slow in absolute terms."""
    def times(role: str) -> list[float]:
        return [m for f in flows if f.get("role") == role
                for m in [flow_metrics(f)["tls_handshake_s"]] if m is not None]

    original, control = times("ab_original"), times("ab_control")
    median_o, median_c = _median(original), _median(control)
    ratio = _ratio(median_o, median_c)
    slower = bool(original) and bool(control) and min(original) > max(control) and \
        ratio is not None and ratio >= thresholds.ratio_warning and \
        (median_o or 0.0) >= thresholds.handshake_slow_s
    return {"original_tls_handshake_s": _round(median_o),
            "control_tls_handshake_s": _round(median_c),
            "handshake_differentiation": slower}


def _verdict(verdict: str, layer: str | None, mechanism: str | None, confidence: float,
             evidence: list[Fact]) -> Record:
    return {"verdict": verdict, "layer": layer, "mechanism": mechanism,
            "confidence": round(confidence, 2), "evidence": evidence}


def _rate_evidence(summary: Record, ab: Record | None) -> list[Fact]:
    out = []
    for key in ("target_goodput_bps", "baseline_goodput_bps", "goodput_ratio",
                "target_tls_handshake_s", "baseline_tls_handshake_s", "handshake_ratio",
                "target_plateau_bps"):
        if summary.get(key) is not None:
            out.append(measured(key, summary[key]))
    if summary.get("rates_ks_pvalue") is not None:
        out.append(measured("rates_ks_pvalue", summary["rates_ks_pvalue"], ".3g"))
    if ab is not None:
        out.append(Fact("sni_ab", ab["verdict"]))
        for key in ("original_median_bps", "control_median_bps", "area", "ks_pvalue",
                    "original_tls_handshake_s", "control_tls_handshake_s"):
            if ab.get(key) is not None:
                out.append(measured(f"sni_ab_{key}", ab[key]))
    return out


def decide_throttling(summary: Record, ab: Record | None,
                      thresholds: Thresholds = Thresholds()) -> Record:
    """The ``analysis`` object from a pair summary and an A/B summary (see module doc), its
    ``evidence`` still ``Fact`` values (``analyze`` writes them for the wire)."""
    evidence = _rate_evidence(summary, ab)
    if ab is not None and not ab["certificate_ok"]:
        evidence.append(flag("sni_ab_certificate_mismatch"))
        ab = None  # someone else answered for the collector: the A/B flows prove nothing
    ab_verdict = ab["verdict"] if ab else None

    if ab is not None and ab_verdict == "differentiation" and ab["slower"] == "original":
        ratio = summary.get("goodput_ratio") or 0.0
        confidence = 0.95 if ratio >= thresholds.ratio_warning else 0.9
        return _verdict("throttled", "tls", "sni_throttle", confidence, evidence)
    if ab is not None and ab["handshake_differentiation"]:
        evidence.append(flag("sni_ab_handshake_slower"))
        return _verdict("throttled", "tls", "sni_throttle", 0.85, evidence)

    if summary["rounds"] == 0:
        if summary["target_failures"] and not summary["baseline_failures"]:
            return _verdict("inconclusive", None, None, 0.0, [
                *evidence, *(Fact("target_failed", f) for f in summary["target_failures"])])
        return _verdict("inconclusive", None, None, 0.0, [*evidence, flag("no_complete_round")])

    ratio = summary["goodput_ratio"]
    pvalue = summary["rates_ks_pvalue"]
    goodput_slow = (summary["goodput_comparable"] and ratio is not None
                    and ratio >= thresholds.ratio_warning
                    and pvalue is not None and pvalue < thresholds.alpha)
    handshake_ratio = summary["handshake_ratio"]
    handshake_slow = (handshake_ratio is not None
                      and handshake_ratio >= thresholds.ratio_warning
                      and (summary["target_tls_handshake_s"] or 0.0)
                      >= thresholds.handshake_slow_s)
    baseline_goodput = summary["baseline_goodput_bps"]
    baseline_slow = (summary["baseline_comparable"] and baseline_goodput is not None
                     and baseline_goodput < thresholds.slow_bps) \
        or (summary["baseline_tls_handshake_s"] or 0.0) >= thresholds.handshake_slow_s

    if baseline_slow:
        return _verdict("inconclusive", None, None, 0.0, [*evidence, flag("generalized_slowness")])
    if not summary["goodput_comparable"]:
        evidence.append(flag("goodput_not_comparable"))
        target_goodput = summary["target_goodput_bps"]
        if not handshake_slow and summary["target_comparable"] \
                and target_goodput is not None and target_goodput < thresholds.slow_bps:
            # Slow in absolute terms with nothing to compare it to: say so, claim nothing.
            return _verdict("inconclusive", None, None, 0.0, [*evidence, flag("target_slow")])
    if not (goodput_slow or handshake_slow):
        return _verdict("ok", None, None, 0.8 if ab_verdict == "none" else 0.6, evidence)

    extreme = (ratio or 0.0) >= thresholds.ratio_extreme or \
        (handshake_ratio or 0.0) >= thresholds.ratio_extreme
    bonus = 0.05 * extreme + 0.05 * bool(summary["target_plateau_flows"])
    if goodput_slow:
        evidence.append(flag("target_slower_than_baseline"))
    if handshake_slow:
        evidence.append(flag("target_handshake_slower_than_baseline"))
    if summary["same_address"]:
        if ab_verdict == "none":
            # One address, and the name alone does not slow the collector's path: the site
            # itself, or a middlebox keyed on something else (Host, URL). Not named here.
            return _verdict("throttled", None, None, 0.5 + bonus,
                            [*evidence, flag("same_address_sni_not_differentiated")])
        return _verdict("throttled", "tls", "sni_throttle", 0.7 + bonus,
                        [*evidence, flag("same_address_different_sni")])
    if ab_verdict == "none":
        return _verdict("throttled", "tcp", "ip_throttle", 0.8 + bonus, evidence)
    return _verdict("throttled", None, None, 0.5 + bonus, [*evidence, flag("mechanism_unknown")])


def analyze(keys: Record, thresholds: Thresholds = Thresholds()) -> Record:
    """``summary``, ``sni_ab_result`` and ``analysis`` for the test keys of a throttling test."""
    flows = keys.get("flows") or []
    summary = pair_summary(flows, thresholds)
    ab = ab_summary(keys.get("sni_ab"), thresholds)
    analysis = decide_throttling(summary, ab, thresholds)
    if keys.get("x_budget", {}).get("skipped_flows"):
        analysis["evidence"].append(
            Fact("budget_skipped_flows", keys["x_budget"]["skipped_flows"]))
    return {"summary": summary, "sni_ab_result": ab, "analysis": written(analysis)}
