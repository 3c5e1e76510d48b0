"""The test names of the kinds of test, and their versions: written from the registry
(``probe.nettests.NETTESTS``) by ``python -m probe.nettests.names``; do not edit.

Here in ``probe.core`` so the collector, which imports only ``probe.core`` and
``probe.netx``, accepts exactly the names the probe's kinds of test emit.
"""

TEST_VERSIONS = {
    "web_connectivity": "0.5.0",
    "connectivity": "0.1.0",
    "telegram": "0.1.0",
    "whatsapp": "0.1.0",
    "signal": "0.1.0",
    "facebook_messenger": "0.1.0",
    "platform": "0.1.0",
    "censor_trace": "0.1.0",
    "throttling": "0.1.0",
    "tcp_reachability": "0.1.0",
}
"""``test_version`` by ``test_name``."""

ANALYSIS_VERSIONS = {
    "web_connectivity": 2,
    "connectivity": 1,
    "telegram": 1,
    "whatsapp": 1,
    "signal": 1,
    "facebook_messenger": 1,
    "platform": 1,
    "censor_trace": 1,
    "throttling": 1,
    "tcp_reachability": 1,
}
"""``analysis_version`` of the verdict rules by ``test_name``."""

LEGACY_TEST_NAMES = ("dns_check", "sni_ab")
"""Accepted from earlier probe versions; no kind emits them now."""

TEST_NAMES = frozenset(TEST_VERSIONS) | frozenset(LEGACY_TEST_NAMES)
"""Every test name the collector accepts."""
