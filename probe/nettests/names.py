"""Write ``probe/core/nettest_names.py`` from the registry: ``python -m probe.nettests.names``.

The collector may import only ``probe.core`` and ``probe.netx``, so the test names it accepts
(and its OpenAPI document lists) are a generated copy of the registry's, kept in
``probe.core``; a test fails while the copy differs from the registry.
"""

from __future__ import annotations

import sys
from pathlib import Path

from probe.nettests.registry import LEGACY_TEST_NAMES, NETTESTS

PATH = Path(__file__).resolve().parents[1] / "core" / "nettest_names.py"


def text() -> str:
    """The module's source, from the registry."""
    versions = {name: kind.version for kind in NETTESTS for name in kind.test_names}
    analysis_versions = {name: kind.analysis_version for kind in NETTESTS
                         for name in kind.test_names}
    lines = [
        '"""The test names of the kinds of test, and their versions: written from the registry',
        "(``probe.nettests.NETTESTS``) by ``python -m probe.nettests.names``; do not edit.",
        "",
        "Here in ``probe.core`` so the collector, which imports only ``probe.core`` and",
        "``probe.netx``, accepts exactly the names the probe's kinds of test emit.",
        '"""',
        "",
        "TEST_VERSIONS = {",
        *(f'    "{name}": "{version}",' for name, version in versions.items()),
        "}",
        '"""``test_version`` by ``test_name``."""',
        "",
        "ANALYSIS_VERSIONS = {",
        *(f'    "{name}": {version},' for name, version in analysis_versions.items()),
        "}",
        '"""``analysis_version`` of the verdict rules by ``test_name``."""',
        "",
        "LEGACY_TEST_NAMES = (" + ", ".join(f'"{n}"' for n in LEGACY_TEST_NAMES) + ")",
        '"""Accepted from earlier probe versions; no kind emits them now."""',
        "",
        "TEST_NAMES = frozenset(TEST_VERSIONS) | frozenset(LEGACY_TEST_NAMES)",
        '"""Every test name the collector accepts."""',
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    PATH.write_text(text(), encoding="utf-8")
    print(f"wrote {PATH.name}: {len(NETTESTS)} kinds of test", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
