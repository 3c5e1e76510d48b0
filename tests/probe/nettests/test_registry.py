"""The registry of the kinds of test, and what is derived from it."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.api.validate import KNOWN_TESTS
from probe.config.platforms import OONI_GROUPS
from probe.core import model, nettest_names
from probe.core.measurement import envelope
from probe.nettests import names
from probe.nettests.registry import LEGACY_TEST_NAMES, NETTESTS, by_name, by_test_name

NETTESTS_DIR = Path(names.__file__).parent


def test_the_core_copy_of_the_names_is_the_registry_s() -> None:
    """``probe/core/nettest_names.py`` is what ``python -m probe.nettests.names`` writes
    (run it after adding a kind of test)."""
    assert names.PATH.read_text(encoding="utf-8") == names.text()


def test_the_collector_accepts_every_test_name_of_every_kind() -> None:
    emitted = {test_name for kind in NETTESTS for test_name in kind.test_names}
    assert KNOWN_TESTS == emitted | set(LEGACY_TEST_NAMES)
    assert "tcp_reachability" in KNOWN_TESTS


def test_kinds_are_folders_with_unique_names_and_test_names() -> None:
    kinds = [kind.name for kind in NETTESTS]
    assert len(set(kinds)) == len(kinds)
    for kind in kinds:
        assert (NETTESTS_DIR / kind / "nettest.py").is_file(), kind
        assert by_name(kind).name == kind
    test_names = [test_name for kind in NETTESTS for test_name in kind.test_names]
    assert len(set(test_names)) == len(test_names)
    assert not set(test_names) & set(LEGACY_TEST_NAMES)


def test_every_kind_folder_is_registered() -> None:
    """A folder with a ``nettest.py`` that is not in the registry would never run."""
    folders = {path.parent.name for path in NETTESTS_DIR.glob("*/nettest.py")}
    assert folders == {kind.name for kind in NETTESTS}


def test_typed_keys_exist_only_for_test_names_of_a_kind() -> None:
    """``probe.core.model`` types the keys of some test names; a kind without its own model
    reads as ``TestKeys``, so a new kind needs no entry there, but a typed name must be one a
    kind emits."""
    emitted = {test_name for kind in NETTESTS for test_name in kind.test_names}
    assert set(model.TEST_KEYS) <= emitted
    assert model.keys_model("tcp_reachability") is model.TestKeys


def test_platform_test_names_are_ooni_s_and_platform() -> None:
    assert set(by_name("platforms").test_names) == set(OONI_GROUPS) | {"platform"}


def test_envelopes_carry_their_kind_s_version() -> None:
    for kind in NETTESTS:
        for test_name in kind.test_names:
            measurement = envelope(test_name=test_name, input_=None, test_keys={},
                                   started=_moment(), runtime=0.0)
            assert measurement["test_version"] == kind.version
            assert by_test_name(test_name) is kind
    assert nettest_names.TEST_VERSIONS["web_connectivity"] == "0.5.0"
    assert by_test_name("dns_check") is None


# Each kind's verdict rules and the constant that versions them.
ANALYSIS_MODULES = {
    "web_connectivity": "probe.nettests.web_connectivity.analysis",
    "connectivity": "probe.nettests.connectivity.ladder",
    "platforms": "probe.nettests.platforms.analysis",
    "censor_trace": "probe.nettests.censor_trace.analysis",
    "throttling": "probe.nettests.throttling.analysis",
    "tcp_reachability": "probe.nettests.tcp_reachability.analysis",
}


def test_every_kind_declares_the_version_of_its_own_analysis() -> None:
    assert set(ANALYSIS_MODULES) == {kind.name for kind in NETTESTS}
    for kind in NETTESTS:
        rules = importlib.import_module(ANALYSIS_MODULES[kind.name])
        assert kind.analysis_version == rules.ANALYSIS_VERSION, kind.name
        assert isinstance(kind.analysis_version, int) and kind.analysis_version >= 1
    assert by_name("web_connectivity").analysis_version == 2


def test_every_verdict_carries_its_kind_s_analysis_version() -> None:
    for kind in NETTESTS:
        for test_name in kind.test_names:
            verdict = {"verdict": "ok", "layer": None, "mechanism": None, "confidence": 0.9,
                       "evidence": ["https_status:200"]}
            measurement = envelope(test_name=test_name, input_=None,
                                   test_keys={"analysis": verdict}, started=_moment(),
                                   runtime=0.0)
            analysis = measurement["test_keys"]["analysis"]
            assert analysis["analysis_version"] == kind.analysis_version, test_name
            # Where the evidence's typed form goes: after every key of the verdict.
            assert list(analysis)[-2:] == ["analysis_version", "evidence_fields"]
            assert "analysis_version" not in verdict  # the caller's dict is left as it was
    # A verdict that stamped its own version keeps it; keys without a verdict get none.
    stamped = envelope(test_name="throttling", input_=None,
                       test_keys={"analysis": {"verdict": "ok", "analysis_version": 7}},
                       started=_moment(), runtime=0.0)
    assert stamped["test_keys"]["analysis"]["analysis_version"] == 7
    bare = envelope(test_name="throttling", input_=None, test_keys={}, started=_moment(),
                    runtime=0.0)
    assert "analysis" not in bare["test_keys"]
    # A check that raised: no rules ran, so its inconclusive verdict names no version.
    failed = envelope(test_name="throttling", input_=None, started=_moment(), runtime=0.0,
                      test_keys={"failure": "unknown_failure: boom", "operation": "top_level",
                                 "analysis": {"verdict": "inconclusive", "evidence": []}})
    assert "analysis_version" not in failed["test_keys"]["analysis"]


def test_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="web_connectivity"):
        by_name("quic")


def _moment() -> datetime:
    return datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
