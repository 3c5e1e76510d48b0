"""What a detector is to the engine: the ``Detector`` base class and what it is handed.

The engine (``engine.py``) owns the observations and the clock; it iterates the registry
(``registry.DETECTORS``) and gives every detector, in registry order,

* each settled bin (``judge_bin``, a ``SettledBin``): the bin's runs per (ASN, target), each
  reporting probe's counts (``ProbeBin``), which probes are healthy, the network sizes, the
  shared hourly baselines, and what detectors earlier in the registry found in the same bin
  (``collapsed`` and ``generalized`` networks: the precedence that makes one incident one
  report);
* each evaluation (``judge_time``, a ``FleetView``): the probes' contact histories at ``now``;

and collects the ``Signal`` objects they return for the tracker. A detector keeps its own
series between calls and saves them itself (``to_state``/``load_state``, a dict with its
``state_version``). The parameters that give its saved state a meaning (``shape``) are saved
beside it; when they change, ``state_shapes`` converts or resets the detector's state
(``convertible``) and says so. A detector may also corroborate (raise or lower) the tier of
another detector's candidate event through the tracker's hook (``corroborations``).

Pure, like everything in this package: a detector never does I/O, reads the clock or logs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from collector.detect.baseline import Baselines
from collector.detect.model import NONE, Run, Signal
from collector.detect.params import DetectionConfig
from collector.detect.saved import mapping
from collector.detect.tracker import Corroboration

if TYPE_CHECKING:
    from collector.detect.silence import Liveness


@dataclass(slots=True)
class ProbeBin:
    """One probe's counts in one bin, gathered by the engine as observations arrive."""

    cc: str
    asn: str
    ok: set[str] = field(default_factory=set)  # canaries (or any target) that answered
    tried: int = 0  # runs whose failure the control could check
    failed: int = 0
    ladder_offline: bool = False


@dataclass(slots=True)
class SettledBin:
    """One bin, complete and judged once, as every bin detector sees it."""

    index: int
    start: float
    end: float
    probes: Mapping[str, ProbeBin]  # every probe that reported in the bin
    runs: Mapping[tuple[str, str], list[Run]]  # (asn, target) -> runs, in arrival order
    healthy: Mapping[str, bool]  # probes healthy enough to speak for a target (canaries)
    frozen: Mapping[str, bool]  # per country: inside an event window's freeze
    active: Mapping[tuple[str, str], int]  # (cc, asn) -> probes heard from recently
    baselines: Baselines  # the hourly baselines detectors share
    is_open: Callable[[str], bool]  # whether a series (``Signal.key``) is in an open event
    # What detectors earlier in the registry found in this bin, for the later ones:
    collapsed: set[tuple[str, str]] = field(default_factory=set)  # (cc, asn): a shutdown
    generalized: set[tuple[str, str]] = field(default_factory=set)  # (cc, asn): all slow
    # (cc, asn) judged in this bin already: here are only the runs a probe uploaded late (its
    # backlog). Per-probe detectors (blocks) take them; network-wide ones skip the network.
    partial: set[tuple[str, str]] = field(default_factory=set)

    def networks(self) -> dict[tuple[str, str], list[str]]:
        """(cc, asn) -> the probes that reported from that network in this bin."""
        out: dict[tuple[str, str], list[str]] = {}
        for probe_id, b in self.probes.items():
            out.setdefault((b.cc, b.asn), []).append(probe_id)
        return out


@dataclass(frozen=True, slots=True)
class FleetProbe:
    cc: str
    asn: str
    live: Liveness


@dataclass(frozen=True, slots=True)
class FleetView:
    """The probes' contact histories at one evaluation, as time detectors see them."""

    now: float
    probes: Mapping[str, FleetProbe]  # probes with a place and a contact history
    blind_until: float  # the collector listened only since then (-inf: always)
    active: Mapping[tuple[str, str], int]
    is_open: Callable[[str], bool]


class Detector:
    """Base class of every detector; the registry lists subclasses.

    A subclass sets ``name`` (its part of the saved state, and of ``Signal.detector``),
    ``state_version`` (bump it when what ``to_state`` saves changes meaning: old saved state
    is then reset, not misread, unless its version is in ``converts_from`` and ``load_state``
    converts it), ``convertible`` (saved state stays valid when ``shape`` changes) and
    overrides what it needs: ``shape``, ``observe`` (inputs of its own),
    ``judge_bin`` and/or ``judge_time``,
    ``to_state``/``load_state``; ``silent_probes`` when it holds probes as silent, and
    ``corroborations`` when it vouches for or against other detectors' events, ``event_extras``
    when it adds facts to their text.
    """

    name: ClassVar[str]
    state_version: ClassVar[int] = 1
    convertible: ClassVar[bool] = False
    # Older state versions whose saved state ``load_state`` converts (others are reset).
    converts_from: ClassVar[frozenset[int]] = frozenset()
    # Its table in a state saved by state version 2, before detectors saved themselves.
    legacy_table: ClassVar[str | None] = None

    def __init__(self, config: DetectionConfig) -> None:
        self.config = config

    @staticmethod
    def shape(config: DetectionConfig) -> Mapping[str, Any]:
        """The parameters that give this detector's saved state its meaning."""
        return {}

    def observe(self, observation: object) -> bool:
        """Take an observation of a kind the engine does not bin itself (anything but a
        ``Run`` or a ``LadderReading``); True when this detector took it."""
        return False

    def judge_bin(self, b: SettledBin) -> list[Signal]:
        """Judge one settled bin (bins come in time order per network)."""
        return []

    def judge_time(self, fleet: FleetView) -> list[Signal]:
        """Judge the fleet at ``fleet.now`` (every evaluation)."""
        return []

    def silent_probes(self) -> set[str]:
        """Probes this detector holds as silent now: their gaps do not train baselines."""
        return set()

    def corroborations(self) -> Sequence[Corroboration]:
        """Rules by which this detector raises or lowers the tier of candidate events."""
        return ()

    def event_extras(self, kind: str, cc: str, asns: Sequence[str],
                     now: float) -> dict[str, Any]:
        """Facts this detector adds to an open event's evidence (its text), e.g. what another
        vantage point sees of the event's networks; empty when it has nothing to say."""
        return {}

    def to_state(self) -> dict[str, Any]:
        return {"version": self.state_version}

    def load_state(self, data: Mapping[str, Any]) -> None:
        """Resume from ``to_state``'s dict (or from the legacy table, version 2)."""


def forget_if_idle(table: dict[str, Any], key: str, run_start: float | None, signal: Signal,
                   is_open: Callable[[str], bool]) -> None:
    """Drop a series that holds nothing: no run, no open member. Keeps state small."""
    if run_start is None and signal.level == NONE and not is_open(signal.key):
        table.pop(key, None)


def load_series(data: Mapping[str, Any], restore: Callable[[object], Any]) -> dict[str, Any]:
    """A detector's series saved as ``{"series": {key: saved}}``, each restored by ``restore``."""
    return {str(k): restore(v) for k, v in mapping(data["series"]).items()}
