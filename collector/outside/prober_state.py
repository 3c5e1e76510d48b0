"""The prober's knowledge of its blocks as one named state document, so a restart keeps it.

Why: the watch sets (``collector.outside.prober``, step 6) are filled by discovery, a few
blocks per round at the operator's gentle rate; with the shipped KG/KZ files that takes about
three hours. Kept only in memory, a restarted collector would report no block in its first
round and no network would be ``ready`` until discovery had refilled every set: hours with no
outside-in verdict, however much verdict history was saved. The service saves this document
after each round (the store's ``STATE_NAME``) and the prober loads it before its first round,
which then probes the saved watched blocks and reports them.

What is kept, per block that discovery has tried (the others have nothing to keep): watched
or set aside, its responsive addresses E(b) with the way each answers, the belief, the
availability outcomes, the misses in a row, the rounds since its discovery, the dark rounds
of the watch set's rule, and where its discovery and round cursors stand; plus the seed of
every random order (``Prober.reseed``), so discovery goes on where it was. Bounded by the
block files: one entry per configured block at most, each of at most ``max_responsive``
addresses and ``availability_window`` outcomes.

Scope first: the document only ever adds to blocks the prober was built with. A saved block
no longer configured (the block files changed, or it is in the opt-out list now) or listed
for another network is dropped, and so is any saved address outside its block, outside the
sender's scope, or asked a way (method, TCP port) no longer configured: nothing the document
says can make the prober send a packet the configuration does not allow (and the sender's
scope check would refuse it anyway). Watched blocks beyond a lower ``watch_per_network`` are
set aside. A document that cannot be read, or of another version, is refused whole with a
``ValueError`` that names the problem, and the prober is left as it was (it starts anew).
"""

from __future__ import annotations

import ipaddress
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from collector.outside.prober import BlockTrack, Prober
from collector.outside.wire import Method, Target

STATE_NAME = "outside.prober_state"
STATE_VERSION = 1


def _target_text(target: Target) -> str:
    return str(target.address) if target.port is None else f"{target.address}:{target.port}"


def _block_json(track: BlockTrack) -> dict[str, Any]:
    return {
        "network": f"{track.block.country}|{track.block.network}",
        "watched": track.watched,
        "responsive": [_target_text(t) for t in track.responsive],
        "misses": {_target_text(t): n for t, n in track.misses.items()},
        "belief_up": track.belief_up,
        "outcomes": "".join("1" if o else "0" for o in track.outcomes),
        "rounds_since_discovery": track.rounds_since_discovery,
        "dark_rounds": track.dark_rounds,
        "tried": track.tried,
        "cursor": track.cursor,
    }


def to_json(prober: Prober) -> str:
    """The blocks discovery has tried, keyed by prefix, and the seed of the orders."""
    return json.dumps({"version": STATE_VERSION, "seed": prober.seed, "blocks": {
        str(t.block.prefix): _block_json(t) for t in prober.tracks
        if t.rounds_since_discovery is not None}}, separators=(",", ":"))


class _Bad(ValueError):
    pass


def _count(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _Bad(f"{what} must be a count")
    return value


def _target(text: Any) -> Target:
    """"A.B.C.D" (ICMP echo) or "A.B.C.D:PORT" (TCP SYN to PORT)."""
    if not isinstance(text, str):
        raise _Bad(f"not an address: {text!r}")
    address, _, port = text.partition(":")
    try:
        if port:
            if not port.isdigit():
                raise ValueError(port)
            return Target(ipaddress.IPv4Address(address), Method.TCP, int(port))
        return Target(ipaddress.IPv4Address(address), Method.ICMP)
    except ValueError:
        raise _Bad(f"not an address: {text!r}") from None


@dataclass(slots=True)
class _Saved:
    network: str
    watched: bool
    responsive: list[Target]
    misses: dict[Target, int]
    belief_up: float
    outcomes: list[bool]
    rounds_since_discovery: int
    dark_rounds: int
    tried: int
    cursor: int


def _parse_block(data: Any) -> _Saved:
    if not isinstance(data, Mapping):
        raise _Bad("not an object")
    network, watched, belief = data.get("network"), data.get("watched"), data.get("belief_up")
    outcomes, responsive, misses = data.get("outcomes"), data.get("responsive"), \
        data.get("misses")
    if not isinstance(network, str) or "|" not in network:
        raise _Bad(f"bad network {network!r}")
    if not isinstance(watched, bool):
        raise _Bad("watched must be true or false")
    if not isinstance(belief, int | float) or isinstance(belief, bool) or \
            not math.isfinite(belief) or not 0 <= belief <= 1:
        raise _Bad("belief_up must be in [0, 1]")
    if not isinstance(outcomes, str) or outcomes.strip("01"):
        raise _Bad("outcomes must be a string of 0 and 1")
    if not isinstance(responsive, list) or not isinstance(misses, Mapping):
        raise _Bad("responsive must be a list and misses an object")
    return _Saved(
        network=network, watched=watched, belief_up=float(belief),
        responsive=[_target(t) for t in responsive],
        misses={_target(t): _count(n, "misses") for t, n in misses.items()},
        outcomes=[o == "1" for o in outcomes],
        rounds_since_discovery=_count(data.get("rounds_since_discovery"),
                                      "rounds_since_discovery"),
        dark_rounds=_count(data.get("dark_rounds"), "dark_rounds"),
        tried=_count(data.get("tried"), "tried"), cursor=_count(data.get("cursor"), "cursor"))


def _parse(text: str) -> tuple[int, dict[ipaddress.IPv4Network, _Saved]]:
    try:
        data: Any = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{STATE_NAME}: not JSON ({exc})") from None
    if not isinstance(data, Mapping) or data.get("version") != STATE_VERSION:
        raise ValueError(f"{STATE_NAME}: not a version {STATE_VERSION} document")
    seed, blocks = data.get("seed"), data.get("blocks")
    if not isinstance(seed, int) or isinstance(seed, bool) or not isinstance(blocks, Mapping):
        raise ValueError(f"{STATE_NAME}: needs a seed and blocks")
    saved: dict[ipaddress.IPv4Network, _Saved] = {}
    for key, value in blocks.items():
        try:
            prefix = ipaddress.IPv4Network(key)
            if prefix.prefixlen != 24:
                raise _Bad("not a /24 block")
            saved[prefix] = _parse_block(value)
        except ValueError as exc:
            raise ValueError(f"{STATE_NAME}: block {key!r}: {exc}") from None
    return seed, saved


def _allowed(prober: Prober, track: BlockTrack, target: Target) -> bool:
    """Whether the prober may send ``target`` now: in the block and the sender's scope,
    asked a way that is configured."""
    settings = prober.settings
    if target.address not in track.block.prefix or \
            not prober.scope.allows(target.address) or target.method not in settings.methods:
        return False
    return target.port is None or target.port in settings.tcp_ports


def load_json(prober: Prober, text: str | None) -> int:
    """Take the saved state of a document into ``prober`` (nothing when ``text`` is None),
    before its first round; returns the blocks restored. ``ValueError`` names what is wrong
    with a document that cannot be read, and the prober is left as it was."""
    if text is None:
        return 0
    seed, saved = _parse(text)
    settings = prober.settings
    prober.reseed(seed)
    restored = 0
    for track in prober.tracks:
        state = saved.get(track.block.prefix)
        if state is None or state.network != f"{track.block.country}|{track.block.network}":
            continue
        responsive: list[Target] = []
        for target in state.responsive:
            if _allowed(prober, track, target) and target not in responsive:
                responsive.append(target)
        track.responsive[:] = responsive[:settings.max_responsive]
        track.misses = {t: n for t, n in state.misses.items() if t in track.responsive}
        track.outcomes.clear()
        track.outcomes.extend(state.outcomes)
        track.belief_up = state.belief_up
        track.rounds_since_discovery = state.rounds_since_discovery
        track.dark_rounds = state.dark_rounds
        track.tried, track.cursor = state.tried, state.cursor
        track.watched = settings.watch_per_network == 0 or state.watched
        restored += 1
    cap = settings.watch_per_network
    if cap:
        for members in prober.networks.values():
            watched = [t for t in members if t.watched]
            for track in watched[cap:]:
                track.forget()
    return restored
