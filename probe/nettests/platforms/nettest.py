"""Platform checks as a kind of test: run by the daemon's own ``platform:`` jobs (each
endpoint holds a measurement slot). Their test names are OONI's for its instant-messaging tests
(``probe.config.platforms.OONI_GROUPS``) and ``platform`` for the others."""

from __future__ import annotations

from probe.nettests import Kind
from probe.nettests.platforms.analysis import ANALYSIS_VERSION

NETTEST = Kind(name="platforms", test_names=(
    "telegram", "whatsapp", "signal", "facebook_messenger", "platform"),
    analysis_version=ANALYSIS_VERSION)
