"""IP scrubbing of error messages and measurements, on tables.

The classification table itself lives in tests/probe/core/test_failures.py."""

from __future__ import annotations

import pytest

from probe.core import failures
from probe.core.scrub import SCRUBBED, scrub_ips, scrub_value


def test_unknown_failure_scrubs_addresses() -> None:
    text = failures.classify(RuntimeError("weird thing from 203.0.113.9 and 2001:db8::5"))
    assert text == f"unknown_failure: weird thing from {SCRUBBED} and {SCRUBBED}"
    assert failures.is_failure_string(text)
    assert not failures.is_failure_string("something_else")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("connect 10.1.2.3:443 failed", f"connect {SCRUBBED}:443 failed"),
        ("v6 [2a02:6b8::2:242]:443", f"v6 [{SCRUBBED}]:443"),
        ("version 1.2.3 is not an address", "version 1.2.3 is not an address"),
        ("time 12:30:45 stays", "time 12:30:45 stays"),
        ("999.1.1.1 is not valid", "999.1.1.1 is not valid"),
    ],
)
def test_scrub_ips(text: str, expected: str) -> None:
    assert scrub_ips(text) == expected


def test_scrub_value_replaces_the_probe_address_everywhere() -> None:
    value = {"a": ["seen 85.113.1.2 here", {"b": "85.113.1.2"}], "n": 3}
    assert scrub_value(value, {"85.113.1.2"}) == {
        "a": [f"seen {SCRUBBED} here", {"b": SCRUBBED}], "n": 3}
