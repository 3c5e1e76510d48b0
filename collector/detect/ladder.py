"""The connectivity ladder as evidence: what kind of outage, and since when.

The probe climbs gateway -> ISP resolver -> domestic site -> foreign anycast -> collector every
round, and every minute while it cannot reach the collector, keeping the readings to upload
later (``probe/nettests/connectivity/ladder.py``; ref §6.2 "S2"). Two pure functions read them:

* ``classify`` names the cause of one offline reading: ``international_cut`` (domestic hosts
  answer, foreign ones do not: the border was closed), ``isp_outage`` (the gateway answers but
  the ISP's resolver and domestic hosts do not), ``local_outage`` (no route or no gateway: the
  volunteer's own power or link), ``unknown`` (not enough rungs to tell).
* ``summarise_outage`` takes the readings of an event's probes and returns the backfilled start
  (per probe, the first reading of the offline streak that covers or follows the heartbeat
  estimate; the earliest across probes; never earlier than ``max_backfill`` before that
  estimate) and the majority cause.

Assumptions: readings carry the probe's clock; a probe whose clock is wrong moves only its
own contribution, bounded by ``max_backfill``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from collector.detect.model import LadderReading


def classify(rungs: Mapping[str, Any], gateway_known: bool, online: bool) -> str:
    """The cause of a reading from its rungs (``test_keys.rungs`` of a connectivity test)."""
    if online:
        return "online"

    def ok(name: str) -> bool | None:
        rung = rungs.get(name)
        if not isinstance(rung, Mapping) or not isinstance(rung.get("reachable"), bool):
            return None
        return bool(rung["reachable"])

    if ok("domestic"):
        return "international_cut"
    if not gateway_known or ok("gateway") is False:
        return "local_outage"
    if ok("gateway") and (ok("resolver") is False or ok("domestic") is False):
        return "isp_outage"
    return "unknown"


def cause_from_summary(summary: str, online: bool) -> str:
    """Fallback when a reading has no rungs: the probe's own sentence (``summarise``)."""
    if online:
        return "online"
    if summary.startswith("international cut"):
        return "international_cut"
    if "no default route" in summary or "gateway unreachable" in summary:
        return "local_outage"
    if "gateway reachable" in summary:
        return "isp_outage"
    return "unknown"


@dataclass(frozen=True, slots=True)
class OutageSummary:
    start: float | None  # backfilled start, None when no reading tells
    cause: str  # majority cause among probes with offline readings, or "unknown"
    causes: Mapping[str, int]  # probes per cause
    probes_with_readings: int


def summarise_outage(
    readings: Iterable[LadderReading], probes: Sequence[str], heartbeat_start: float,
    until: float, max_backfill: float,
) -> OutageSummary:
    """Backfilled start and cause of an outage affecting ``probes``.

    Assumptions: ``readings`` may come in any order and may include other probes (ignored).
    Only readings in ``[heartbeat_start - max_backfill, until]`` are considered.
    """
    wanted = set(probes)
    lower = heartbeat_start - max_backfill
    by_probe: dict[str, list[LadderReading]] = {}
    for reading in readings:
        if reading.probe_id in wanted and lower <= reading.t <= until:
            by_probe.setdefault(reading.probe_id, []).append(reading)
    starts: list[float] = []
    causes: Counter[str] = Counter()
    for probe_readings in by_probe.values():
        probe_readings.sort(key=lambda r: r.t)
        first_offline: float | None = None
        probe_causes: Counter[str] = Counter()
        for reading in probe_readings:
            if reading.online:
                if reading.t > heartbeat_start and first_offline is not None:
                    break  # this probe's outage is over
                first_offline = None
                probe_causes.clear()
                continue
            if first_offline is None:
                first_offline = reading.t
            probe_causes[reading.cause] += 1
        if first_offline is not None:
            starts.append(first_offline)
            known = {c: n for c, n in probe_causes.items() if c != "unknown"}
            causes[max(sorted(known), key=lambda c: known[c]) if known else "unknown"] += 1
    known_causes = {c: n for c, n in causes.items() if c != "unknown"}
    cause = max(sorted(known_causes), key=lambda c: known_causes[c]) if known_causes \
        else "unknown"
    return OutageSummary(start=min(starts) if starts else None, cause=cause,
                         causes=dict(causes), probes_with_readings=len(by_probe))
