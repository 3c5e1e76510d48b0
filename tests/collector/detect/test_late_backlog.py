"""A dark network's backlog, uploaded with its original timestamps once it is back, is judged
in its own bins while the other networks went on being judged: what happened in the dark (a
block that began then) reaches the events with its true start."""

from __future__ import annotations

from collector.detect.engine import Engine
from collector.detect.model import Event, Run
from collector.detect.params import DetectionConfig

T0 = 1_700_000_100.0  # the start of a 300-second bin
MINUTE = 60.0
LIT, DARK = "AS9198", "AS48716"
TARGETS = [f"https://s{i}.example/" for i in range(6)]
BLOCKED = TARGETS[0]
DARK_FROM, DARK_TO = T0 + 60 * MINUTE, T0 + 120 * MINUTE
BLOCK_FROM, BLOCK_TO = T0 + 70 * MINUTE, T0 + 150 * MINUTE
END = T0 + 200 * MINUTE


def round_of(probe: str, asn: str, t: float) -> list[Run]:
    runs = []
    for k, target in enumerate(TARGETS):
        blocked = asn == DARK and target == BLOCKED and BLOCK_FROM <= t < BLOCK_TO
        runs.append(Run(probe_id=probe, cc="KZ", asn=asn, target=target, t=t + k,
                        outcome="blocked" if blocked else "ok",
                        layer="tls" if blocked else None,
                        mechanism="timeout" if blocked else None, failed=blocked))
    return runs


def play(backlog_judged: bool) -> dict[str, Event]:
    """Four probes per network measure every five minutes and heartbeat every minute; the
    dark network's probes keep measuring in the dark and upload it all when back."""
    engine = Engine(DetectionConfig())
    probes = [(f"{asn.lower()}-{i}", asn) for asn in (LIT, DARK) for i in range(4)]
    held: list[Run] = []
    events: dict[str, Event] = {}
    t = T0
    while t < END:
        dark = DARK_FROM <= t < DARK_TO
        for probe, asn in probes:
            if asn == DARK and dark:
                if int(t - T0) % 300 == 0:
                    held += round_of(probe, asn, t)
                continue
            engine.set_probe(probe, "KZ", asn)
            engine.contact(probe, t)
            if int(t - T0) % 300 == 0:
                for run in round_of(probe, asn, t):
                    engine.add(run)
        if not dark and held:
            if backlog_judged:
                for run in held:
                    engine.add(run)
            held = []
        t += MINUTE
        events.update((e.id, e) for e in engine.evaluate(t))
    return events


def test_a_block_that_began_in_the_dark_reaches_the_events_with_its_true_start() -> None:
    events = play(backlog_judged=True)
    blocks = [e for e in events.values() if e.kind == "block"]
    assert [(e.asns, e.targets) for e in blocks] == [((DARK,), (BLOCKED,))]
    [block] = blocks
    assert block.tier in ("likely", "confirmed") and block.status == "closed"
    assert BLOCK_FROM <= block.start < BLOCK_FROM + 300  # the first blocked bin, in the dark
    assert block.end is not None and BLOCK_TO <= block.end <= BLOCK_TO + 15 * MINUTE
    # Judged from what came live only, the same block would start when the network came back.
    live_only = [e for e in play(backlog_judged=False).values() if e.kind == "block"]
    assert [e.start >= DARK_TO for e in live_only] == [True]
