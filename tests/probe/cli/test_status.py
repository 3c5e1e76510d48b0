"""``probe status`` on a spool in a known state: waiting measurements, an eviction, a failed
upload, an event window, a day's data use and recent verdicts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from probe.cli import status
from probe.local import journal
from probe.local.journal import Journal, Verdict
from probe.local.localdb import LocalDB
from probe.local.spool import Entry, Spool
from tests.helpers.probe_setup import loopback_config

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


async def test_status_reports_the_state_of_the_spool_and_journal(tmp_path: Path) -> None:
    listed = [{"url": "https://kloop.kg/"}, {"url": "https://24.kg/"}]
    config = loopback_config(tmp_path, "http://127.0.0.1:9", "secret-token", listed, 9,
                             spool_max_mb=0.001)  # 1000 bytes: the third entry evicts one
    db = await LocalDB.open(config.spool_path)
    spool, book = Spool(db, 1000), Journal(db)
    for index in range(3):
        body = json.dumps({"i": index, "pad": "x" * 380})
        await spool.put([Entry(f"uid-{index}", "web_connectivity", "https://kloop.kg/",
                               f"2026-01-05 11:0{index}:00", body)])
    await book.set(**{journal.LAST_UPLOAD: "2026-01-05 10:00:00",
                      journal.LAST_UPLOAD_ATTEMPT: "2026-01-05 11:58:00",
                      journal.LAST_UPLOAD_ERROR: "connection_refused",
                      journal.LAST_HEARTBEAT: "2026-01-05 11:59:30",
                      journal.STARTED: "2026-01-04 12:00:00",
                      journal.CLOCK_STATUS: "ok", journal.CLOCK_OFFSET: "-0.4",
                      journal.CLOCK_CHECKED: "2026-01-05 11:59:30",
                      journal.EVENT_WINDOWS: json.dumps([
                          {"start": "2026-01-05T00:00:00+00:00",
                           "end": "2026-01-06T00:00:00+00:00", "name": "protest anniversary"}])})
    await book.add_usage("2026-01-05", 2_500_000, measurements=40, skipped=3)
    await book.add_usage("2026-01-04", 9_000_000, measurements=90)
    for verdict in ("ok", "blocked"):
        await book.add_verdict(Verdict("https://kloop.kg/", "web_connectivity",
                                       "2026-01-05 11:02:00", verdict,
                                       "tls" if verdict == "blocked" else None,
                                       "timeout" if verdict == "blocked" else None))
    await book.add_verdict(journal.summarise_analysis({
        "test_name": "censor_trace", "input": "https://kloop.kg/",
        "measurement_start_time": "2026-01-05 11:03:00",
        "test_keys": {"censor": {"hop": 3, "server_hops": 7},
                      "analysis": {"verdict": "blocked", "layer": "tls", "mechanism": "reset"}}}))
    await book.add_verdict(Verdict(journal.LADDER_TARGET, "connectivity", "2026-01-05 11:59:00",
                                   "offline", summary="international cut: gateway reachable"))
    await db.close()

    report = status.gather(config, NOW)
    assert report["spool"]["measurements"] == 2 and report["counters"]["evicted"] == 1
    assert report["today"] == {"day": "2026-01-05", "bytes": 2_500_000, "measurements": 40,
                               "skipped_for_budget": 3, "budget_bytes": 100_000_000}
    text = status.render(report, NOW)
    lines = text.splitlines()
    assert "2 measurements waiting" in text and "oldest 2026-01-05 11:01:00 UTC" in text
    assert "last success 2026-01-05 10:00:00 UTC (2 h ago)" in text
    assert "failed: connection_refused" in text
    assert "1 evicted (spool full, oldest first), 0 refused by the collector" in text
    assert "last answered 2026-01-05 11:59:30 UTC (30 s ago)" in text
    assert "protest anniversary until 2026-01-06T00:00:00+00:00" in text
    assert "2.5 MB of 100.0 MB budget, 40 measurements, 3 skipped" in text
    assert report["target_lists"]["source"] == "files"
    assert report["coverage"] == {"listed": 2, "measured_today": 1}  # kloop.kg, not 24.kg
    assert "list today     1 of 2 targets measured" in text
    assert "target lists   the config's own files" in text
    kloop = next(line for line in lines if line.startswith("https://kloop.kg/"))
    assert "blocked(tls/timeout) ok" in kloop
    assert any("international cut: gateway reachable" in line for line in lines)
    assert "secret-token" not in text
    assert report["clock"] == {"status": "ok", "offset_s": -0.4,
                               "checked_at": "2026-01-05 11:59:30"}
    assert ("clock          agrees with the collector's (offset -0.4 s), checked "
            "2026-01-05 11:59:30 UTC (30 s ago)") in lines
    # A censor trace is listed apart from the site's own verdicts, with the censor's hop.
    trace = next(line for line in lines if line.startswith("trace:https://kloop.kg/"))
    assert "blocked(tls/reset)" in trace
    assert any("censor 3 hops away, server 7" in line for line in lines)
    # The full table is 110 columns; on an 80-column terminal nothing wraps.
    assert max(len(line) for line in lines) > 80
    narrow = status.render(report, NOW, width=80).splitlines()
    assert max(len(line) for line in narrow) <= 80, [x for x in narrow if len(x) > 80]
    joined = " ".join(" ".join(narrow).split())
    assert "2.5 MB of 100.0 MB budget, 40 measurements, 3 skipped" in joined
    assert "protest anniversary until 2026-01-06T00:00:00+00:00" in joined
    row = next(line for line in narrow if line.startswith("https://kloop.kg/"))
    assert "blocked(tls/timeout) ok" in row and "2026-01-05 11:" in row
    assert max(len(line) for line in status.render(report, NOW, width=40).splitlines()) <= 40
