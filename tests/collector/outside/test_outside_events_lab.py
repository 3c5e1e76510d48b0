"""The outside-in component end to end, down to the engine's events, in the namespace lab.

The collector's ``OutsideService`` probes the emulated country (``tests.helpers.outsidelab``)
with real raw sockets on a schedule scaled down 120 times: rounds of 5 s stand for the default
10 minutes, the confirmation 0.25 s after a round for the default 30 s (probes still wait 1 s
for a reply, a third of the default 3 s: the lab cannot scale the wait for a lost packet). Every
reading goes to a detection ``Engine`` (the lab's networks are eight blocks each, under IODA's
minimum baseline of 20, so ``min_baseline`` is 2), which is evaluated at once, as a pipeline run
would. Four cases, as the scenarios of the issue: a full cut of one network opens a shutdown of
that network alone, after the first round that sees it and its confirmation (before a second
round); half a network cut is a warning and no event; ICMP filtered while TCP answers is no
event (the confirmation finds the addresses by TCP); a quiet stretch with random losses and
hosts going away opens nothing. And after a restart, with the engine's state and the service's
history read back, a cut in the first rounds opens the shutdown as fast as before it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from collector.detect.engine import Engine
from collector.detect.model import Event
from collector.detect.outside import OutsideParams
from collector.detect.outside_in import NetworkView, OutsideDetector, OutsideReading
from collector.detect.params import DetectionConfig
from collector.outside.config import OutsideConfig, resolve
from collector.outside.hourly import STATE_NAME, HourlyShare
from collector.outside.service import OutsideService
from collector.outside.signal import STATE_NAME as HISTORY_STATE
from collector.outside.signal import OutsideMonitor
from collector.store import Store, open_store
from tests.helpers.outsidelab import (
    ASN_A,
    ASN_B,
    NET_B,
    SEED,
    TCP_ONLY,
    OutsideLab,
    first_samples_find_a_host,
    write_block_file,
)

pytestmark = pytest.mark.lab

ROUND = 5.0
SCALE = 600.0 / ROUND  # lab seconds -> configured seconds (10-minute rounds)
MAX_WARM_UP = 20
NET_A, NET_B_ASN = ASN_A, ASN_B


@dataclass
class Run:
    """What the engine said: every event update with the wall time it came out."""

    engine: Engine
    service: OutsideService
    events: list[tuple[float, Event]] = field(default_factory=list)
    readings: list[tuple[int, OutsideReading]] = field(default_factory=list)
    methods_before: set[str] = field(default_factory=set)
    changed_at: float = 0.0
    changed_after: int = 0

    def opened(self) -> list[tuple[float, Event]]:
        first: dict[str, tuple[float, Event]] = {}
        for at, event in self.events:
            first.setdefault(event.id, (at, event))
        return sorted(first.values(), key=lambda item: item[0])

    def networks(self) -> dict[str, NetworkView]:
        detector = self.engine.detector("outside")
        assert isinstance(detector, OutsideDetector)
        return detector.networks

    def settled(self) -> bool:
        latest = {r.asn: r.blocks_up for _, r in self.readings}
        return latest == {NET_A: 8, NET_B_ASN: 8} and len(self.networks()) == 2 and \
            all(view.level == "none" for view in self.networks().values())

    def level(self, asn: str) -> str:
        return self.networks()[f"KZ|{asn}"].level


def methods(service: OutsideService) -> set[str]:
    """How net-a's responsive addresses are probed (icmp, tcp)."""
    assert service.prober is not None
    return {str(t.method) for track in service.prober.tracks
            if track.block.network == NET_A for t in track.responsive}


async def drive(lab: OutsideLab, tmp_path: Path, rounds_after: int,
                change: Callable[[], None] | None, store: Store | None = None,
                engine_state: dict[str, Any] | None = None, history: str | None = None) -> Run:
    """Warm up, apply ``change``, run ``rounds_after`` more rounds. ``engine_state`` and
    ``history`` resume a collector that was stopped (the engine's and the service's saved
    state); with ``store`` the service saves its hourly signal and history there."""
    write_block_file(tmp_path)
    cfg = resolve(OutsideConfig(enabled=True, block_files=("blocks.txt",), rate=4000, burst=20,
                                round=ROUND, timeout=1.0, discovery_sample=32,
                                max_in_flight=512, confirm_after=ROUND / 20), tmp_path)
    detection = DetectionConfig(outside=OutsideParams(min_baseline=2, min_history=3))
    engine = Engine(detection) if engine_state is None else \
        Engine.from_state(engine_state, detection)
    service = OutsideService(cfg, make_socket=lab.collector_socket,
                             params=engine.config.outside, rng=random.Random(SEED))
    service.monitor.load_json(history)
    run = Run(engine, service)

    def to_engine(readings: list[OutsideReading]) -> None:
        for reading in readings:
            run.readings.append((service.rounds, reading))
            engine.add(reading)
        now = time.time()
        run.events.extend((now, e) for e in engine.evaluate(now))

    service.on_readings = to_engine
    if store is not None:
        async def save(hourly: HourlyShare) -> None:
            await store.save_state(STATE_NAME, hourly.to_json(), "2026-01-01 00:00:00")

        async def save_history(monitor: OutsideMonitor) -> None:
            await store.save_state(HISTORY_STATE, monitor.to_json(), "2026-01-01 00:00:00")

        service.save_hourly, service.save_history = save, save_history
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        # Warmed up before the change: both networks' eight blocks up in the latest round,
        # judged "none" against a history of min_history rounds (discovery takes a round or
        # two, more on a loaded machine).
        while not run.settled():
            assert service.rounds < MAX_WARM_UP, "the lab never settled"
            await asyncio.sleep(0.02)
        assert first_samples_find_a_host(service, lab)
        run.methods_before = methods(service)
        if change is not None:
            await asyncio.to_thread(change)
        run.changed_at, run.changed_after = time.time(), service.rounds
        while service.rounds < run.changed_after + rounds_after:
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    return run


async def test_a_full_cut_opens_a_shutdown_of_that_network_within_a_round(
        lab: OutsideLab, tmp_path: Path) -> None:
    store = await open_store(str(tmp_path / "kuzot.sqlite"))
    try:
        run = await drive(lab, tmp_path, 3, lambda: lab.cut("198.18.0.0/20"), store)
        saved = HourlyShare.from_json(await store.load_state(STATE_NAME))
    finally:
        await store.close()
    assert [at for at, _ in run.events if at < run.changed_at] == []
    [(opened_at, event)] = run.opened()
    assert event.kind == "shutdown" and event.asns == (NET_A,) and event.tier == "suspected"
    assert event.evidence["outside"][0]["reachable"] is False
    # The second critical look was the confirmation after the first round after the cut, not
    # a second round: the reading that opened it came while that round was the latest.
    opening = [n for n, r in run.readings if r.asn == NET_A and r.t <= opened_at]
    assert opening[-1] == run.changed_after + 1
    assert run.service.confirmations == {"dark": 1, "recovered": 0}
    # Where the time went (printed with -s; the configured-time reading is in the README):
    # the rest of the slot until the next round, that round, the pause, the confirmation.
    round_t = opening_t = 0.0
    for n, r in run.readings:
        if n == run.changed_after + 1 and r.asn == NET_A:
            round_t, opening_t = (r.t, opening_t) if not round_t else (round_t, r.t)
    print(f"\ncut -> event {opened_at - run.changed_at:.2f} s "
          f"({(opened_at - run.changed_at) / ROUND:.2f} rounds of {ROUND:.0f} s): next round "
          f"began {round_t - run.changed_at:.2f} s after the cut, its confirmation "
          f"{opening_t - round_t:.2f} s after it began, the event {opened_at - opening_t:.2f} s "
          f"after the confirmation began")
    assert run.level(NET_B_ASN) == "none"
    # The status page's hourly signal took every round of both networks and is in the store
    # as the service saved it after the last round: net-a's hour below full, net-b's full.
    assert saved.series == run.service.hourly.series
    hours = saved.shares(run.readings[-1][1].t)
    assert set(hours) == {("KZ", NET_A), ("KZ", NET_B_ASN)}
    assert (hours[("KZ", NET_A)][-1] or 1.0) < 1.0 and hours[("KZ", NET_B_ASN)][-1] == 1.0


async def test_after_a_restart_a_cut_in_the_first_rounds_opens_within_a_round(
        lab: OutsideLab, tmp_path: Path) -> None:
    # A collector runs until warmed up and stops; another resumes from its saved state (the
    # engine's, and the service's history in the store) and sees net-a cut after its first
    # round or two, before it has min_history rounds of its own. The shutdown opens on the
    # confirmation after the first round that sees the cut, as without a restart; without
    # the saved history there would be no verdict, so no confirmation, and a second round.
    store = await open_store(str(tmp_path / "kuzot.sqlite"))
    try:
        before = await drive(lab, tmp_path, 0, None, store)
        engine_state = json.loads(json.dumps(before.engine.to_state()))
        history = await store.load_state(HISTORY_STATE)
        assert history is not None
        run = await drive(lab, tmp_path, 3, lambda: lab.cut("198.18.0.0/20"), store,
                          engine_state=engine_state, history=history)
    finally:
        await store.close()
    min_history = run.engine.config.outside.min_history
    assert run.changed_after < min_history  # the cut came while a fresh history was too short
    [(opened_at, event)] = run.opened()
    assert event.kind == "shutdown" and event.asns == (NET_A,)
    opening = [n for n, r in run.readings if r.asn == NET_A and r.t <= opened_at]
    assert opening[-1] == run.changed_after + 1
    assert run.service.confirmations == {"dark": 1, "recovered": 0}
    assert run.level(NET_B_ASN) == "none"


async def test_a_partial_cut_is_a_warning_and_no_event(lab: OutsideLab,
                                                       tmp_path: Path) -> None:
    half = ["198.18.16.0/24", "198.18.17.0/24", *TCP_ONLY[:2]]
    run = await drive(lab, tmp_path, 3, lambda: lab.cut(*half))
    assert run.events == []
    assert run.level(NET_B_ASN) == "warning" and run.level(NET_A) == "none"
    assert run.service.confirmations == {"dark": 0, "recovered": 0}
    assert sum(1 for p in NET_B if p not in half) == 4


async def test_icmp_filtered_while_tcp_answers_is_no_event(lab: OutsideLab,
                                                          tmp_path: Path) -> None:
    run = await drive(lab, tmp_path, 3, lambda: lab.filter_icmp("198.18.0.0/20"))
    assert run.events == []
    assert run.methods_before == {"icmp"}  # net-a was found by ICMP echo
    assert methods(run.service) == {"tcp"}
    first = [r for n, r in run.readings if n == run.changed_after + 1 and r.asn == NET_A]
    assert [r.blocks_up for r in first] == [0, 8]  # the round, then its confirmation
    # The round after the filter saw net-a dark by ICMP; the confirmation found its hosts by
    # TCP, kept that way, and the rounds since see it up.
    assert run.service.confirmations == {"dark": 0, "recovered": 1}
    assert run.level(NET_A) == "none"
    last = [r for _, r in run.readings if r.asn == NET_A][-1]
    assert last.blocks_up == 8


async def test_a_quiet_stretch_with_random_losses_opens_nothing(lab: OutsideLab,
                                                               tmp_path: Path) -> None:
    import random
    rng = random.Random(11)

    def noisy() -> None:
        lab.loss(3)
        for _ in range(6):
            role = rng.choice(["neta", "netb"])
            lab.remove_host(role, rng.choice(lab.hosts[role]))

    run = await drive(lab, tmp_path, 12, noisy)
    assert run.events == []
    assert run.level(NET_A) == "none" and run.level(NET_B_ASN) == "none"
    # The losses were real: some rounds took more probes than one per judged block.
    assert run.service.counters.sent > 0
    print(f"\nquiet: {run.service.rounds} rounds, confirmations {run.service.confirmations}")
