"""One probe of a network that kept reporting uploads its backlog late: its runs are judged in
their own (partial) bins for blocks, never dropped as late, and never judged twice."""

from __future__ import annotations

from collector.detect.engine import Engine
from collector.detect.model import Event, Run
from collector.detect.params import DetectionConfig

T0 = 1_700_000_100.0  # the start of a 300-second bin
MINUTE = 60.0
ASN = "AS9198"
TARGETS = [f"https://s{i}.example/" for i in range(6)]
BLOCKED = TARGETS[0]
BLOCK_FROM, BLOCK_TO = T0 + 30 * MINUTE, T0 + 100 * MINUTE
HELD_FROM, HELD_TO = T0 + 20 * MINUTE, T0 + 80 * MINUTE  # the late probe's uploads wait
END = T0 + 160 * MINUTE
PROBES = [f"p{i}" for i in range(3)]
LATE = "p3"


def round_of(probe: str, t: float) -> list[Run]:
    runs = []
    for k, target in enumerate(TARGETS):
        blocked = target == BLOCKED and BLOCK_FROM <= t < BLOCK_TO
        runs.append(Run(probe_id=probe, cc="KZ", asn=ASN, target=target, t=t + k,
                        outcome="blocked" if blocked else "ok",
                        layer="dns" if blocked else None,
                        mechanism="nxdomain" if blocked else None, failed=blocked))
    return runs


def play(straggler: bool = False) -> tuple[dict[str, Event], Engine]:
    """Four probes measure every five minutes; ``LATE``'s uploads wait an hour (its spool),
    then arrive all at once with their original times. With ``straggler``, one of its runs
    from a bin already judged with its other runs is uploaded again long after."""
    engine = Engine(DetectionConfig())
    held: list[Run] = []
    events: dict[str, Event] = {}
    t = T0
    while t < END:
        for probe in [*PROBES, LATE]:
            engine.set_probe(probe, "KZ", ASN)
            engine.contact(probe, t)
            if int(t - T0) % 300 == 0:
                runs = round_of(probe, t)
                if probe == LATE and HELD_FROM <= t < HELD_TO:
                    held += runs
                else:
                    for run in runs:
                        engine.add(run)
        if t >= HELD_TO and held:
            for run in held:
                engine.add(run)
            held = []
            if straggler:
                engine.add(round_of(LATE, T0)[1])  # judged at T0 already
        t += MINUTE
        events.update((e.id, e) for e in engine.evaluate(t))
    return events, engine


def test_a_late_probes_backlog_is_judged_not_dropped() -> None:
    events, engine = play()
    assert engine.late == 0  # before, every held run (12 rounds of 6) counted late
    [event] = events.values()
    assert (event.kind, event.targets) == ("block", (BLOCKED,))
    [member] = event.evidence["members"]
    assert member["probes"] == 4  # the late probe's blocked rounds count too
    assert event.tier == "likely" and event.status == "closed"
    assert abs(event.start - BLOCK_FROM) <= 5 * MINUTE


def test_a_run_of_a_round_already_judged_is_still_late() -> None:
    _, engine = play(straggler=True)
    assert engine.late == 1
