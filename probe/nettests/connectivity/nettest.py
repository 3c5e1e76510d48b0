"""The connectivity ladder as a kind of test: run by the daemon's own ``ladder`` job (its
cadence follows what the ladder finds), costed by its rungs, shown online or offline."""

from __future__ import annotations

from typing import Any

from probe.nettests import Kind, Line, Measurement
from probe.nettests.connectivity.ladder import ANALYSIS_VERSION
from probe.nettests.cost import LADDER_RUNG

TARGET = "connectivity"
"""``status`` shows the ladder as one more target, under this name."""


def cost(keys: dict[str, Any]) -> int:
    rungs = keys.get("rungs") or {}
    return LADDER_RUNG * sum(int(r.get("tried", 1)) for r in rungs.values()
                             if isinstance(r, dict))


def line(measurement: Measurement) -> Line:
    analysis = (measurement.get("test_keys") or {}).get("analysis") or {}
    return Line(TARGET, "online" if analysis.get("online") else "offline",
                summary=analysis.get("summary"))


NETTEST = Kind(name="connectivity", test_names=("connectivity",), version="0.1.0",
               analysis_version=ANALYSIS_VERSION,
               estimate=cost, status_line=line)
