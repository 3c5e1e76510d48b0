"""The daemon's jobs as objects (``probe.daemon.jobs``): each says when it is due again,
whether it runs now and runs; the loop only dispatches by kind, so a kind of test with a plan
runs as jobs of its own with no edit in the loop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from probe.core.measurement import envelope
from probe.daemon.jobs.ladder import LadderJob
from probe.daemon.jobs.link import UploadJob
from probe.daemon.jobs.measured import PlannedJob
from probe.nettests import Plan
from probe.nettests.connectivity.ladder import summarise
from tests.helpers.probe_setup import loopback_config, make_daemon
from tests.helpers.virtual_clock import VirtualClock

START = datetime(2026, 5, 9, 6, tzinfo=UTC)


async def online_ladder(started: datetime) -> dict[str, Any]:
    rungs = {"gateway": {"reachable": True, "failure": None},
             "foreign": {"reachable": True, "reached": 1, "tried": 1, "failure": None},
             "domestic": {"reachable": True, "reached": 1, "tried": 1, "failure": None}}
    observation = {"rungs": rungs, "gateway_known": True}
    online, sentence = summarise(observation)
    return envelope(test_name="connectivity", input_=None, started=started, runtime=0.0,
                    test_keys={**observation, "analysis": {"online": online,
                                                           "summary": sentence}})


async def echo(subject: str, started: datetime) -> dict[str, Any]:
    return envelope(test_name="echo", input_=subject, started=started, runtime=0.0,
                    test_keys={"analysis": {"verdict": "ok", "layer": None,
                                            "mechanism": None, "confidence": 1.0,
                                            "evidence": []}})


async def test_a_kind_with_a_plan_runs_as_jobs_of_its_own(tmp_path: Path) -> None:
    config = loopback_config(tmp_path, "http://127.0.0.1:9", None, [], 9,
                             schedule={"jitter": 0.0})
    clock = VirtualClock(START)
    plan = Plan(inputs=("a", "b"), interval=600.0, budget=5.0, measure=echo)
    daemon, db, spool = await make_daemon(config, tmp_path, clock=clock,
                                          measure_ladder=online_ladder, platform_names=(),
                                          plans={"echo": plan})
    job = daemon.jobs["echo"]
    assert isinstance(job, PlannedJob) and job.metered
    stop = asyncio.Event()

    async def finish() -> None:
        stop.set()

    clock.settle = daemon.settle
    clock.at(3600.0, finish)
    await daemon.run(stop)
    await db.close()
    measured = [e.input for e in spool.recorded if e.test_name == "echo"]
    # Every ten minutes for an hour, each input: the first within the first interval.
    assert sorted(set(measured)) == ["a", "b"]
    assert 5 <= measured.count("a") <= 7 and 5 <= measured.count("b") <= 7
    assert daemon.measured["echo"] == len(measured)


async def test_an_input_dropped_from_the_plan_is_not_planned_again(tmp_path: Path) -> None:
    config = loopback_config(tmp_path, "http://127.0.0.1:9", None, [], 9,
                             schedule={"jitter": 0.0})
    daemon, db, _spool = await make_daemon(config, tmp_path, platform_names=(), plans={})
    job = PlannedJob("echo", Plan(inputs=("a",), interval=600.0, budget=5.0, measure=echo))
    assert job.next_due(daemon, "a", 100.0, 100.0) == 700.0
    assert job.next_due(daemon, "gone", 100.0, 100.0) is None
    assert not await job.admit(daemon, "echo:gone", "gone", 100.0)
    await db.close()


async def test_the_upload_waits_for_the_collector_and_then_plans_itself(
        tmp_path: Path) -> None:
    config = loopback_config(tmp_path, "http://127.0.0.1:9", None, [], 9,
                             schedule={"upload_interval": "5m"})
    daemon, db, _spool = await make_daemon(config, tmp_path, platform_names=(), plans={})
    job = UploadJob()
    daemon.reachable = False
    assert job.next_due(daemon, "", 0.0, 10.0) == 310.0
    assert not await job.admit(daemon, "upload", "", 10.0)
    daemon.reachable = True
    assert job.next_due(daemon, "", 0.0, 10.0) is None  # the drain plans its next try
    assert await job.admit(daemon, "upload", "", 10.0)
    await db.close()


async def test_the_ladder_runs_every_minute_while_the_collector_does_not_answer(
        tmp_path: Path) -> None:
    config = loopback_config(tmp_path, "http://127.0.0.1:9", None, [], 9,
                             schedule={"ladder_interval": "15m",
                                       "offline_ladder_interval": "1m"})
    daemon, db, _spool = await make_daemon(config, tmp_path, platform_names=(), plans={})
    job = LadderJob()
    daemon.reachable, daemon.online = False, True
    assert job.next_due(daemon, "", 0.0, 0.0) == 60.0
    daemon.reachable = True
    assert job.next_due(daemon, "", 0.0, 0.0) == 900.0
    assert await job.admit(daemon, "ladder", "", 0.0)  # never held back by the budget
    assert not job.metered
    await db.close()
