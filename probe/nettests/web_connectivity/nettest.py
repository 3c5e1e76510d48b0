"""Web connectivity as a kind of test: run per target by the daemon's own ``target:`` jobs
(pacing, the data budget, follow-up traces), so it plans no jobs here."""

from __future__ import annotations

from probe.nettests import Kind
from probe.nettests.web_connectivity.analysis import ANALYSIS_VERSION

NETTEST = Kind(name="web_connectivity", test_names=("web_connectivity",), version="0.5.0",
               analysis_version=ANALYSIS_VERSION)
