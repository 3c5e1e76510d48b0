"""Throttling as a kind of test: run by the daemon's own ``throttling`` job, which holds one
measurement slot for a whole round (``probe.nettests.throttling.run`` keeps its cadence and
byte budget)."""

from __future__ import annotations

from probe.nettests import Kind
from probe.nettests.throttling.analysis import ANALYSIS_VERSION

NETTEST = Kind(name="throttling", test_names=("throttling",), version="0.1.0",
               analysis_version=ANALYSIS_VERSION)
