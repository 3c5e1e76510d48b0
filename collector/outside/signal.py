"""From a round's block states to the outside-in signal per network and country, and its verdict.

The signal is IODA's: the number of /24 blocks whose state is ``up``, per network and per
country (blocks down, uncertain and not yet judged are counted beside it, for metrics and the
event text). ``OutsideMonitor`` keeps each group's recent history of that count and asks
``collector.detect.outside.judge`` about every new round; the history learns the inpainted
value (``to_history``), so an outage never becomes the baseline. Holds state but does no I/O.

The history survives a restart: the service saves it after each round as one named state
document (``STATE_NAME``, ``to_json``) and the collector reads it back at start (``load_json``).
Without it the verdict would be ``insufficient`` for the first ``min_history`` rounds after a
restart, and so would the decision to confirm a network that turns critical (the service's
``_suspects``): a cut in that hour would wait a whole round for its second look. Bounded:
``history_points`` values per group, the groups those of the operator's block files.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from collector.detect.outside import OutsideParams, Verdict, judge, to_history
from collector.outside.belief import BlockState
from collector.outside.prober import BlockResult, RoundReport

NETWORK = "network"
COUNTRY = "country"
STATE_NAME = "outside.verdict_history"
STATE_VERSION = 1
RESCALE = 1.25
"""A history whose median is above this many times the group's blocks judged was learned on
more blocks than are counted now (``OutsideMonitor.observe``)."""


@dataclass(frozen=True, slots=True)
class GroupCount:
    """Blocks of one network (``network`` set) or one whole country (``network`` empty)."""

    country: str
    network: str
    up: int = 0
    down: int = 0
    uncertain: int = 0
    unjudged: int = 0

    @property
    def kind(self) -> str:
        return NETWORK if self.network else COUNTRY

    @property
    def judged(self) -> int:
        return self.up + self.down + self.uncertain

    @property
    def share_up(self) -> float | None:
        """Blocks up over blocks judged, or None when none is judged yet."""
        return self.up / self.judged if self.judged else None


def aggregate(results: Iterable[BlockResult]) -> list[GroupCount]:
    """Counts per network and per country, sorted (countries first within a country)."""
    tallies: dict[tuple[str, str], list[int]] = {}
    index = {BlockState.UP: 0, BlockState.DOWN: 1, BlockState.UNCERTAIN: 2, None: 3}
    for result in results:
        slot = index[result.state]
        for key in ((result.block.country, ""), (result.block.country, result.block.network)):
            tallies.setdefault(key, [0, 0, 0, 0])[slot] += 1
    return [GroupCount(country, network, *counts)
            for (country, network), counts in sorted(tallies.items())]


@dataclass(frozen=True, slots=True)
class GroupVerdict:
    at: float
    group: GroupCount
    verdict: Verdict


class OutsideMonitor:
    """The recent history of blocks up per group, and a verdict for each new round.

    ``history_points`` is the median's window in rounds (IODA: 7 days; 916 rounds of 11
    minutes). Groups are keyed by (country, network), network empty for a whole country.
    """

    def __init__(self, params: OutsideParams | None = None, history_points: int = 916) -> None:
        if history_points < 1:
            raise ValueError("history_points must be >= 1")
        self.params = params or OutsideParams()
        self._history_points = history_points
        self._history: dict[tuple[str, str], deque[float]] = {}
        self.latest: dict[tuple[str, str], GroupVerdict] = {}

    def observe(self, report: RoundReport,
                ready: Collection[tuple[str, str]] | None = None) -> list[GroupVerdict]:
        """Verdicts of the groups of ``report``; with ``ready`` (``Prober.ready``), only of the
        groups whose watched blocks are settled. A group's history learned on more blocks than
        it now has judged (its median above ``RESCALE`` times them: a smaller
        ``outside.watch_per_network``, a shorter block file, or a history saved before the
        watch sets, when every block was counted) is dropped, and the group starts anew: blocks
        up cannot exceed blocks judged, so that baseline cannot be compared (and a cut keeps
        its blocks judged, so a cut never drops it)."""
        verdicts = []
        for group in aggregate(report.results):
            key = (group.country, group.network)
            if ready is not None and key not in ready:
                continue
            history = self._history.setdefault(key, deque(maxlen=self._history_points))
            if history and statistics.median(history) > RESCALE * max(1, group.judged):
                history.clear()
            verdict = judge(float(group.up), list(history), self.params)
            history.append(to_history(verdict, self.params))
            verdicts.append(GroupVerdict(at=report.started, group=group, verdict=verdict))
            self.latest[key] = verdicts[-1]
        return verdicts


    def to_json(self) -> str:
        """The history per group, keyed "CC|network" ("CC|" for a whole country)."""
        return json.dumps({"version": STATE_VERSION, "series": {
            f"{cc}|{network}": list(history)
            for (cc, network), history in sorted(self._history.items())}})

    def load_json(self, text: str | None) -> None:
        """Take the history of a saved document (nothing when ``text`` is None); each group
        keeps its last ``history_points`` values. ``ValueError`` names what is wrong with a
        document that cannot be read, and the history is left as it was."""
        if text is None:
            return
        data: Any = json.loads(text)
        if not isinstance(data, Mapping) or data.get("version") != STATE_VERSION or \
                not isinstance(data.get("series"), Mapping):
            raise ValueError(f"{STATE_NAME}: not a version {STATE_VERSION} document")
        loaded: dict[tuple[str, str], deque[float]] = {}
        for key, values in data["series"].items():
            if not isinstance(key, str) or "|" not in key or not isinstance(values, list) or \
                    not all(isinstance(v, int | float) and not isinstance(v, bool)
                            and math.isfinite(v) and v >= 0 for v in values):
                raise ValueError(f"{STATE_NAME}: bad series {key!r}")
            cc, _, network = key.partition("|")
            loaded[(cc, network)] = deque((float(v) for v in values),
                                          maxlen=self._history_points)
        self._history = loaded
