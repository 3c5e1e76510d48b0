"""The registry of the kinds of test: one import and one entry in ``NETTESTS`` per kind.

Apart from ``probe.nettests`` (the ``NetTest`` protocol), so that importing one kind's module
does not load every kind, and a kind's ``nettest.py`` can use the protocol without a circle.
"""

from __future__ import annotations

from probe.nettests import NetTest
from probe.nettests.censor_trace.nettest import NETTEST as censor_trace
from probe.nettests.connectivity.nettest import NETTEST as connectivity
from probe.nettests.platforms.nettest import NETTEST as platforms
from probe.nettests.tcp_reachability.nettest import NETTEST as tcp_reachability
from probe.nettests.throttling.nettest import NETTEST as throttling
from probe.nettests.web_connectivity.nettest import NETTEST as web_connectivity

NETTESTS: tuple[NetTest, ...] = (
    web_connectivity,
    connectivity,
    platforms,
    censor_trace,
    throttling,
    tcp_reachability,
)

# Test names the collector accepts though no kind here emits them any more: measurements of
# earlier probe versions may still wait in a spool.
LEGACY_TEST_NAMES = ("dns_check", "sni_ab")
_BY_TEST_NAME = {test_name: kind for kind in NETTESTS for test_name in kind.test_names}


def by_name(name: str) -> NetTest:
    """The kind of test called ``name``; KeyError names the known ones."""
    for kind in NETTESTS:
        if kind.name == name:
            return kind
    raise KeyError(f"no kind of test {name!r} (known: {', '.join(k.name for k in NETTESTS)})")


def by_test_name(test_name: str) -> NetTest | None:
    """The kind whose measurements carry ``test_name``, if any."""
    return _BY_TEST_NAME.get(test_name)


def test_versions() -> dict[str, str]:
    """``test_version`` by ``test_name``, for every kind."""
    return {test_name: kind.version for kind in NETTESTS for test_name in kind.test_names}
