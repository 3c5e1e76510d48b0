"""The quickstart's live view: a pure renderer, tested on rows, and which targets a round
measures."""

from __future__ import annotations

from probe.config import Target
from probe.live import due, render


def test_render_shows_progress_status_and_rows() -> None:
    rows = {
        "https://kloop.kg/": {"verdict": "blocked", "layer": "tls", "mechanism": "timeout",
                              "time": "12:00:01"},
        "https://24.kg/": {"verdict": "ok", "layer": None, "mechanism": None,
                           "time": "12:00:02"},
    }
    screen = render(rows, "online", "round: 2/9 targets measured", "status page: http://x/")
    lines = screen.splitlines()
    assert "network: online" in lines
    assert "round: 2/9 targets measured" in lines
    kloop = next(line for line in lines if line.startswith("https://kloop.kg/"))
    assert kloop.split() == ["https://kloop.kg/", "blocked", "tls", "timeout", "12:00:01"]
    # Sorted by URL so the table does not jump around between redraws.
    assert lines.index(next(x for x in lines if x.startswith("https://24.kg/"))) < \
        lines.index(kloop)


def test_render_without_results() -> None:
    screen = render({}, "no connectivity: gateway reachable, foreign hosts unreachable",
                    "round starting", "")
    assert "(no results yet)" in screen
    assert "no connectivity: gateway reachable, foreign hosts unreachable" in screen


def test_a_round_measures_what_is_due_by_each_targets_own_interval() -> None:
    curated = Target(url="https://kloop.kg/")
    daily = Target(url="http://aimak.kg/", interval=86400.0)
    targets = (curated, daily)
    # First round: everything.
    assert due(targets, {}, 1000.0, 300.0) == targets
    last = {curated.url: 1000.0, daily.url: 1000.0}
    # Five minutes later only the target at the config's cadence; the daily one a day later.
    assert due(targets, last, 1000.0 + 299.0, 300.0) == ()
    assert due(targets, last, 1000.0 + 300.0, 300.0) == (curated,)
    assert due(targets, last, 1000.0 + 86399.0, 300.0) == (curated,)
    assert due(targets, last, 1000.0 + 86400.0, 300.0) == targets
