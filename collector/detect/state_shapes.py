"""What shapes each detector's saved state: the code's state version and the parameters.

Detection state is saved and resumed (``Engine.to_state``/``from_state``). Part of it only
means something under the parameters it was built with: bin indices are counted in
``block.bin`` units, streaks count bins judged against thresholds, silence groups were found
with the heartbeat interval and alpha. Each part is therefore saved with its *shape*: a code
version (bumped when the meaning of the saved data changes) and the parameters that shaped it,
with a fingerprint of both. On load, a part whose shape differs from the running config's is
converted when that is sound and reset otherwise, and the change is reported (``StateChange``)
so that the caller can log it and count it; nothing changes silently.

The parts are the engine's own two and one per registered detector (``registry.DETECTORS``:
each declares its ``state_version``, its ``shape`` and whether it is ``convertible``). Per part,
on a change of parameters:

* ``bins`` (pending bins, the last settled one): converted, re-binned at the new width
  (observations already judged stay judged; the rest are gathered again in new bins);
* ``block``: converted, i.e. kept: a series holds each probe's last two rounds with their
  times, its chronic flags and its episode, none of which depends on the bin or thresholds
  (thresholds are applied afresh at the next bin);
* ``baselines``: kept likewise: hourly medians, whatever the bin;
* ``collapse``, ``throttle``, ``slowdown``, ``silence`` (the groups, not each probe's own
  heartbeat history): reset, since they count bins or hold findings judged by the old rules.

A change of the code's version of a part resets it, unless the part converts that older
version (``Detector.converts_from``: ``block`` converts version 2, deriving each probe's
blocked streak and flips from the two rounds it kept). A state saved before shapes were
recorded has unknown parameters: every part is treated as changed (``bins`` reset, since its
old width is unknown). A detector registered after the state was saved has no part in it: it
starts empty, and that is no change to report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from collector.detect import throttling
from collector.detect.params import DetectionConfig
from collector.detect.registry import DETECTORS

# The engine's own parts (every other part is a detector of ``registry.DETECTORS``): the pending
# bins, and the hourly baselines the detectors share.
ENGINE_VERSIONS = {"bins": 1, "baselines": 1}
ENGINE_CONVERTIBLE = frozenset({"bins", "baselines"})
# Code version of each part's saved state (a detector's is its ``state_version``).
VERSIONS = {**ENGINE_VERSIONS, **{d.name: d.state_version for d in DETECTORS}}
CONVERTIBLE = ENGINE_CONVERTIBLE | {d.name for d in DETECTORS if d.convertible}
# Older code versions of a part that its loader converts instead of resetting.
CONVERTS_FROM = {d.name: d.converts_from for d in DETECTORS}
BASELINE_KEYS = throttling.BASELINE_KEYS
# The parts every saved state with shapes has: one of them missing is a damaged shape, reset.
VERSIONS_BEFORE_REGISTRY = frozenset({"bins", "block", "collapse", "throttle", "slowdown",
                                      "baselines", "silence"})


@dataclass(frozen=True, slots=True)
class StateChange:
    """One part of the saved state that did not match the running config."""

    detector: str
    reason: str  # "params" or "version"
    action: str  # "converted" or "reset"
    old: Mapping[str, Any]  # what changed, as saved (empty: unknown)
    new: Mapping[str, Any]  # ... and as configured now

    def describe(self) -> str:
        """One log line: which part, what became of it, old and new."""
        if not self.old:
            what = "saved before its parameters were recorded"
        else:
            what = ", ".join(f"{k} {_text(self.old.get(k))} -> {_text(self.new.get(k))}"
                             for k in sorted(set(self.old) | set(self.new)))
        return f"detection state of {self.detector} {self.action}: {self.reason} changed ({what})"


def _text(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _plain(value: Any) -> Any:
    """JSON-ready (tuples become lists), so a shape compares equal after a save and load."""
    return json.loads(json.dumps(value))


def _flat(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def params_of(config: DetectionConfig) -> dict[str, dict[str, Any]]:
    """The parameters that shape each part's state: the engine's, then each detector's."""
    throttle = dataclasses.asdict(config.throttle)
    shaped: dict[str, dict[str, Any]] = _plain({
        "bins": {"bin": config.block.bin, "settle": config.block.settle},
        "baselines": {k: throttle[k] for k in BASELINE_KEYS},
        **{d.name: dict(d.shape(config)) for d in DETECTORS},
    })
    return shaped


def shapes(config: DetectionConfig) -> dict[str, dict[str, Any]]:
    """Each part's shape as saved with the state: version, parameters, fingerprint."""
    out = {}
    for name, params in params_of(config).items():
        text = json.dumps([VERSIONS[name], params], sort_keys=True, separators=(",", ":"))
        out[name] = {"version": VERSIONS[name], "params": params,
                     "fingerprint": hashlib.sha256(text.encode()).hexdigest()[:16]}
    return out


def compare(saved: Mapping[str, Any] | None,
            config: DetectionConfig) -> list[StateChange]:
    """What must become of each part of a state saved with ``saved`` shapes under ``config``."""
    changes = []
    for name, shape in shapes(config).items():
        if saved is not None and name not in saved and name not in VERSIONS_BEFORE_REGISTRY:
            continue  # a detector registered since: it saved nothing, it starts empty
        old = saved.get(name) if saved is not None else None
        old_version = old.get("version") if isinstance(old, Mapping) else 1
        if old_version != shape["version"]:
            converted = old_version in CONVERTS_FROM.get(name, frozenset()) and \
                name in CONVERTIBLE
            changes.append(StateChange(name, "version", "converted" if converted else "reset",
                                       {"version": old_version},
                                       {"version": shape["version"]}))
            continue
        old_params = old.get("params") if isinstance(old, Mapping) else None
        if old_params == shape["params"]:
            continue
        if not isinstance(old_params, Mapping):
            changes.append(StateChange(name, "params", "reset", {}, {}))
            continue
        before, after = _flat(old_params), _flat(shape["params"])
        keys = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
        changes.append(StateChange(
            name, "params", "converted" if name in CONVERTIBLE else "reset",
            {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}))
    return changes
