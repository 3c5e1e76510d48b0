"""The collector as an operator runs it, with ``outside.enabled``, probing the namespace lab.

The other outside-in tests drive ``OutsideService`` directly. These start the real collector
(``python -m collector serve``, ``tests.helpers.collector_process``) inside the collector's
namespace of the outside lab (``tests.helpers.outsidelab``: the only routes there lead to the
lab's blocks), and read it only through its HTTP interfaces, from sockets made in that
namespace, and its log (standard error): the start-up path from the config's ``outside:``
section to the service, its metrics, the engine's events, the store's ``outside.hourly`` and
``outside.verdict_history``, and the status page. Rounds of 2 s stand for 10 minutes; the
lab's networks are eight blocks each, under IODA's minimum baseline of 20, so
``detection.outside.min_baseline`` is 2.

1. Warm-up: ``kuzot_outside_up 1``, rounds counted, every block the lab makes responsive up.
2. net-a cut (all inbound dropped at the border): one shutdown, of net-a alone, through
   ``/api/v1/events``; the status page charts both networks hour by hour and the event's card
   says net-a does not answer from outside; the log has the event's line.
3. Restart on the same store: the first round after it is judged against the saved history
   (critical and none, not ``insufficient``), and it adds to the saved hourly signal rather
   than starting it anew (both checked to fail when the app does not load them); the event
   goes on, and no detection run failed.
4. The same collector without CAP_NET_RAW runs on: ``/healthz`` 200, ``kuzot_outside_up 0``,
   the reason logged once.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collector.outside.hourly import STATE_NAME as HOURLY_STATE
from collector.outside.hourly import HourlyShare
from collector.store import open_store
from tests.helpers.chainlab import in_namespace
from tests.helpers.collector_process import CollectorProcess
from tests.helpers.netns import exec_prefix
from tests.helpers.outsidelab import ASN_A, ASN_B, NET_A, NET_B, OutsideLab, write_block_file
from tests.helpers.processes import without_net_raw

pytestmark = pytest.mark.lab

ROUND = 2.0
MIN_HISTORY = 3
CONFIG = f"""\
status:
  countries: [KZ]
detection:
  interval: 0.5
  outside:
    min_baseline: 2
    min_history: {MIN_HISTORY}
outside:
  enabled: true
  block_files: [blocks.txt]
  rate: 4000
  burst: 20
  round: {ROUND}
  timeout: 1
  discovery_sample: 32
  max_in_flight: 512
  confirm_after: 0.1
"""
REFUSED = "outside-in probing is off"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def collector(lab: OutsideLab, tmp_path: Path, raw: bool = True) -> CollectorProcess:
    """The collector in the lab's collector namespace, its config and SQLite in ``tmp_path``;
    without CAP_NET_RAW unless ``raw``."""
    write_block_file(tmp_path)
    namespace = lab.net.name("collector")

    def connect(address: tuple[str, int]) -> socket.socket:
        return in_namespace(namespace, lambda: socket.create_connection(address, timeout=5))

    prefix = exec_prefix(namespace) if raw else without_net_raw(exec_prefix(namespace))
    return CollectorProcess(tmp_path, CONFIG, prefix=prefix, connect=connect,
                            stderr=tmp_path / "stderr.log")


@pytest.fixture
def app(lab: OutsideLab, tmp_path: Path) -> Iterator[CollectorProcess]:
    process = collector(lab, tmp_path)
    try:
        yield process
    finally:
        process.stop()


def ok(process: CollectorProcess, path: str) -> bytes:
    status, body = process.get(path)
    assert status == 200, (path, status, body[:500])
    return body


def scrape(process: CollectorProcess) -> Samples:
    text = ok(process, "/metrics").decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    """``kuzot_outside_<name>``, or ``name`` itself when it is a whole metric name."""
    full = name if name.startswith("kuzot_") else f"kuzot_outside_{name}"
    return samples.get((full, frozenset(labels.items())))


def blocks(samples: Samples, asn: str, state: str) -> float | None:
    return sample(samples, "blocks", country="KZ", network=asn, state=state)


def verdict(samples: Samples, asn: str) -> str | None:
    levels = [level for level in ("none", "warning", "critical", "insufficient")
              if sample(samples, "verdict", country="KZ", network=asn, level=level) == 1]
    return levels[0] if len(levels) == 1 else None


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    """Poll ``probe`` until it returns something true; fail naming ``what`` after
    ``timeout`` (generous: the lab shares a loaded machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = probe()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def shutdowns(process: CollectorProcess) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = json.loads(ok(process, "/api/v1/events?kind=shutdown"))[
        "events"]
    return events


def rounds_saved(database: Path, asn: str) -> int:
    """Rounds of ``asn`` in the store's ``outside.hourly`` document, over every hour."""
    async def load() -> str | None:
        store = await open_store(str(database))
        try:
            return await store.load_state(HOURLY_STATE)
        finally:
            await store.close()

    saved = HourlyShare.from_json(asyncio.run(load()))
    return int(sum(cell[1] for cell in saved.series.get(f"KZ|{asn}", {}).values()))


def test_the_collector_probes_from_outside_opens_a_shutdown_and_resumes_after_a_restart(
        lab: OutsideLab, app: CollectorProcess) -> None:
    app.start()

    # 1. Warmed up: every block the lab makes responsive is up, judged against a history.
    def warmed_up() -> Samples | None:
        samples = scrape(app)
        settled = blocks(samples, ASN_A, "up") == len(NET_A) and \
            blocks(samples, ASN_B, "up") == len(NET_B) and \
            verdict(samples, ASN_A) == verdict(samples, ASN_B) == "none"
        return samples if settled else None

    samples = wait_for("both networks up and judged", warmed_up)
    assert sample(samples, "up") == 1
    assert (sample(samples, "rounds_total") or 0) >= 4  # discovery, then min_history rounds
    assert sample(samples, "blocks_configured") == len(NET_A) + 1 + len(NET_B)
    # The lab's empty block is set aside by discovery: configured, never watched or reported.
    assert sample(samples, "network_blocks_configured", country="KZ", network=ASN_A) == \
        len(NET_A) + 1
    assert sample(samples, "blocks_watched", country="KZ", network=ASN_A) == len(NET_A)
    assert blocks(samples, ASN_A, "unjudged") == 0
    assert blocks(samples, ASN_A, "down") == blocks(samples, ASN_B, "down") == 0
    assert sample(samples, "blocks_up_ratio", country="KZ", network=ASN_B) == 1.0
    assert (sample(samples, "probes_total", method="icmp") or 0) > 0
    assert (sample(samples, "probes_total", method="tcp") or 0) > 0  # net-b's TCP-only blocks
    assert (sample(samples, "replies_total") or 0) > 0
    assert shutdowns(app) == []

    # 2. net-a cut at the border: a shutdown of net-a alone, from the engine of the process.
    lab.cut("198.18.0.0/20")
    [event] = wait_for("a shutdown event", lambda: shutdowns(app), timeout=30)
    assert (event["cc"], event["asns"], event["status"]) == ("KZ", [ASN_A], "open")
    assert event["tier"] == "suspected"  # outside-in darkness alone, no probe inside
    [outside] = [o for o in event["evidence"]["outside"] if o["asn"] == ASN_A]
    assert (outside["reachable"], outside["blocks_up"], outside["blocks_total"]) == \
        (False, 0, len(NET_A))  # of the watched blocks
    samples = scrape(app)
    assert verdict(samples, ASN_A) == "critical" and verdict(samples, ASN_B) == "none"
    assert sample(samples, "confirmations_total", result="dark") == 1
    page = ok(app, "/?lang=en").decode()
    chart = page[page.index('<h3 id="outside">'):]
    assert "Seen from outside the country, hour by hour" in chart
    assert f"Kazakhstan · {ASN_A}" in chart and f"Kazakhstan · {ASN_B}" in chart
    assert "From outside" in page
    assert re.search(rf"{ASN_A} does not answer from outside the country: 0 of "
                     rf"{len(NET_A)} address blocks respond \(usually \d+\)", page)
    # The log says it too (standard error: journald under systemd), with time and level.
    assert app.stderr is not None
    logged = wait_for("the event's log line", lambda: [
        line for line in app.stderr.read_text().splitlines()
        if f"kuzot.events: event opened: {event['id']} shutdown" in line], timeout=10)
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO ", logged[0])
    assert "collector.outside.service: outside-in probing 17 blocks" in app.stderr.read_text()

    # 3. Restart on the same store, net-a still cut.
    app.stop()
    saved = rounds_saved(app.database, ASN_B)
    assert saved >= 4
    app.start()
    page = ok(app, "/?lang=en").decode()  # the chart is read from the store: there at once
    assert f"Kazakhstan · {ASN_B}" in page[page.index('<h3 id="outside">'):]

    def first_round() -> Samples | None:
        samples = scrape(app)
        return samples if (sample(samples, "rounds_total") or 0) >= 1 else None

    samples = wait_for("a round after the restart", first_round, timeout=30)
    assert sample(samples, "up") == 1
    # The saved history judges the first rounds: without it both would be "insufficient"
    # for min_history (3) rounds.
    assert 1 <= (sample(samples, "rounds_total") or 0) <= MIN_HISTORY
    assert (verdict(samples, ASN_A), verdict(samples, ASN_B)) == ("critical", "none")
    # The hourly signal goes on from the saved one: once this process has saved a round,
    # the document holds more rounds than this process ran (started anew, it would hold
    # only those).
    after = wait_for("a round saved after the restart",
                     lambda: (n := rounds_saved(app.database, ASN_B)) > saved and n, timeout=30)
    ran = sample(scrape(app), "rounds_total") or 0
    assert after > ran
    # The event goes on: the same one, still net-a's alone, still open.
    [again] = shutdowns(app)
    assert (again["id"], again["asns"], again["status"]) == (event["id"], [ASN_A], "open")
    # Nothing broke on the way: every detection run of this process went through.
    samples = scrape(app)
    assert (sample(samples, "kuzot_detection_runs_total", outcome="ok") or 0) > 0
    assert (sample(samples, "kuzot_detection_runs_total", outcome="error") or 0) == 0
    assert app.stderr is not None and REFUSED not in app.stderr.read_text()


def test_without_cap_net_raw_the_collector_runs_on_and_says_why(
        lab: OutsideLab, tmp_path: Path) -> None:
    process = collector(lab, tmp_path, raw=False)
    process.start()
    try:
        assert process.stderr is not None
        wait_for("the logged reason", lambda: REFUSED in process.stderr.read_text(), 10)
        time.sleep(ROUND * 2)  # long enough for rounds, had any started
        assert process.get("/healthz")[0] == 200
        samples = scrape(process)
        assert sample(samples, "up") == 0
        assert sample(samples, "rounds_total") == 0
        assert sample(samples, "probes_total", method="icmp") == 0
        assert sample(samples, "blocks_configured") == len(NET_A) + 1 + len(NET_B)
        errors = process.stderr.read_text()
        assert errors.count(REFUSED) == 1, errors
        assert "Operation not permitted" in errors and "CAP_NET_RAW" in errors
        assert process.process is not None and process.process.poll() is None
    finally:
        process.stop()
