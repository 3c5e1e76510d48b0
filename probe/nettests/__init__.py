"""The kinds of test, one package each (measure, analysis, run), and the ``NetTest`` protocol
they share.

``probe.nettests.registry.NETTESTS`` is the one list of the kinds of test this probe runs.
Everything that differs between kinds is asked of the kind, never decided by comparing test
names elsewhere: the ``test_version`` and ``analysis_version`` of its measurements
(``probe.core.measurement``), what a measurement cost (``probe.daemon.traffic``), the line
``status`` shows for it (``probe.local.journal``), and, for a kind that runs on its own
cadence, what the daemon schedules (``NetTest.plan``, run by
``probe.daemon.jobs.measured.PlannedJob``). The collector learns the test names from
``probe.core.nettest_names``, which is written from the registry
(``python -m probe.nettests.names``) and checked against it by a test.

Adding a kind of test (README, "How to add a kind of test"): one folder with a ``nettest.py``
that defines ``NETTEST``, its import and entry in the registry, one section in the probe
config.

The kinds the daemon has always had (web connectivity per target, the connectivity ladder,
platform checks, censor traces, throttling rounds) keep their own jobs in
``probe.daemon.jobs`` (pacing, trace gating, the ladder's reactions) and return no plan.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from probe.config.probe_config import ProbeConfig

Measurement = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Line:
    """What ``status`` shows for one measurement: under which target, with which verdict."""
    target: str
    verdict: str | None
    layer: str | None = None
    mechanism: str | None = None
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class Plan:
    """How the daemon runs a kind of test on its own cadence: one job per input, every
    ``interval`` seconds (faster inside event windows, like sites), each measurement cut after
    ``budget`` seconds. ``measure`` returns a whole measurement (envelope and analysis); a
    measurement that raises is recorded as a ``top_level`` failure by the daemon."""
    inputs: tuple[str, ...]
    interval: float
    budget: float
    measure: Callable[[str, datetime], Awaitable[Measurement]]


class NetTest(Protocol):
    """One kind of test, as the rest of the probe sees it."""

    @property
    def name(self) -> str:
        """The kind: its folder under ``probe/nettests/``, its config section, its job names."""

    @property
    def test_names(self) -> tuple[str, ...]:
        """Every ``test_name`` its measurements carry (platform checks use OONI's names)."""

    @property
    def version(self) -> str:
        """The ``test_version`` of its measurements."""

    @property
    def analysis_version(self) -> int:
        """The version of its verdict rules, carried by each of its measurements as
        ``test_keys.analysis.analysis_version`` (``probe.core.measurement.envelope``)."""

    def cost(self, keys: dict[str, Any]) -> int | None:
        """Bytes one measurement with these test keys cost, or None for the estimate of its
        DNS, TCP, TLS and HTTP exchanges (``probe.nettests.cost.exchanges``)."""

    def line(self, measurement: Measurement) -> Line | None:
        """What ``status`` shows for it, or None for the verdict under its input."""

    def plan(self, config: ProbeConfig) -> Plan | None:
        """The daemon's jobs for it, or None when it does not run on its own (off in the
        config, or run by a job of its own in ``probe.daemon.jobs``)."""


@dataclass(frozen=True, slots=True)
class Kind:
    """A ``NetTest`` made of plain functions; what a kind leaves out gets the default."""
    name: str
    test_names: tuple[str, ...]
    version: str = "0.1.0"
    analysis_version: int = 1
    estimate: Callable[[dict[str, Any]], int] | None = None
    status_line: Callable[[Measurement], Line] | None = None
    schedule: Callable[[ProbeConfig], Plan | None] | None = None

    def cost(self, keys: dict[str, Any]) -> int | None:
        return self.estimate(keys) if self.estimate is not None else None

    def line(self, measurement: Measurement) -> Line | None:
        return self.status_line(measurement) if self.status_line is not None else None

    def plan(self, config: ProbeConfig) -> Plan | None:
        return self.schedule(config) if self.schedule is not None else None
