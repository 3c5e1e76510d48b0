"""The censor trace as a kind of test: a follow-up the daemon plans itself (``trace:`` jobs,
only with CAP_NET_RAW, only after a block by name), costed by its steps, and shown under
``trace:<url>``, apart from the URL's own verdicts."""

from __future__ import annotations

from typing import Any

from probe.nettests import Kind, Line, Measurement
from probe.nettests.censor_trace.analysis import ANALYSIS_VERSION
from probe.nettests.censor_trace.policy import trace_key
from probe.nettests.cost import DNS_QUERY, TRACE_STEP, count


def cost(keys: dict[str, Any]) -> int:
    steps = count(keys, "control_hops") + count(keys, "trigger_hops")
    return DNS_QUERY * 2 * count(keys, "queries") + TRACE_STEP * steps


def line(measurement: Measurement) -> Line:
    keys = measurement.get("test_keys") or {}
    analysis = keys.get("analysis") or {}
    censor = keys.get("censor") or {}
    hop = censor.get("hop")
    summary = (f"censor {hop} hops away, server {censor.get('server_hops')}"
               if hop is not None else keys.get("failure"))
    return Line(trace_key(str(measurement.get("input"))), analysis.get("verdict"),
                analysis.get("layer"), analysis.get("mechanism"), summary)


NETTEST = Kind(name="censor_trace", test_names=("censor_trace",),
               analysis_version=ANALYSIS_VERSION, estimate=cost,
               status_line=line)
