"""The bench fleet's event window and round jitter: probes measure ``speedup`` times faster
inside the window, and jittered rounds stay within the scheduler's bounds."""

from __future__ import annotations

from collections import Counter

from bench.detection_eval import detection_config
from bench.fleet import EPOCH, HOUR, AsnSpec, Fleet, FleetSpec, Noise
from collector.detect.engine import Engine
from collector.detect.model import LadderReading, Run

QUIET = Noise(heartbeat_miss=0.0, flaky_share=0.0, outages_per_day=0.0, churn_share=0.0,
              transient_timeout=0.0, transient_inconclusive=0.0, site_down_per_day=0.0,
              cdn_trouble_per_day=0.0, filtered_targets=0, broken_resolver_per_day=0.0)


class Recorder(Engine):
    def __init__(self, spec: FleetSpec) -> None:
        super().__init__(detection_config(spec))
        self.rounds: list[tuple[str, float]] = []

    def add(self, observation: Run | LadderReading) -> None:
        if isinstance(observation, LadderReading) and observation.online:
            self.rounds.append((observation.probe_id, observation.t))  # one per round
        super().add(observation)


def test_rounds_are_four_times_faster_inside_the_window_and_jittered() -> None:
    start = EPOCH + 2 * HOUR
    spec = FleetSpec(seed=3, asns=(AsnSpec("AS1", 3), AsnSpec("AS2", 3)), targets=6,
                     start=start, days=6 * HOUR / 86400, warmup=HOUR, cycle=900.0,
                     jitter=0.2, window=(start + 2 * HOUR, start + 4 * HOUR), noise=QUIET)
    engine = Recorder(spec)
    Fleet(spec).run(engine)
    inside = Counter(p for p, t in engine.rounds if start + 2 * HOUR <= t < start + 4 * HOUR)
    before = Counter(p for p, t in engine.rounds if start <= t < start + 2 * HOUR)
    assert set(inside) == set(before) and len(inside) == 6
    for probe in inside:
        # Two hours at 15 min (+-20%) is 7 to 10 rounds; at 3.75 min, 28 to 40.
        assert 7 <= before[probe] <= 10 and 28 <= inside[probe] <= 40
    per_probe: dict[str, list[float]] = {}
    for probe, t in engine.rounds:
        per_probe.setdefault(probe, []).append(t)
    outside = [b - a for times in per_probe.values() for a, b in zip(times, times[1:], strict=False)
               if b < start + 2 * HOUR]
    assert min(outside) >= 0.8 * 900 - 1 and max(outside) <= 1.2 * 900 + 1
    assert max(outside) - min(outside) > 60  # jittered, not a fixed period
