"""The quickstart's live view: a pure renderer, tested on rows, and which targets a round
measures."""

from __future__ import annotations

from typing import Any

from probe.cli.live import due, render
from probe.config.probe_config import Target


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


def _rows(count: int, blocked: tuple[str, ...] = ()) -> dict[str, dict[str, Any]]:
    rows = {f"https://site{i:03}.example.kg/some/long/path/to/a/page": {
        "verdict": "down", "layer": "dns", "mechanism": "nxdomain", "time": "12:00:00"}
        for i in range(count)}
    for url in blocked:
        rows[url] = {"verdict": "blocked", "layer": "tls", "mechanism": "reset",
                     "time": "12:00:01"}
    return rows


def test_a_long_list_fits_the_terminal_with_the_blocked_targets_first() -> None:
    rows = _rows(195, blocked=("https://zzz.kloop.kg/",))
    links = ("status page: http://127.0.0.1:8080/   metrics: http://127.0.0.1:8080/metrics   "
             "API: http://127.0.0.1:8080/api/v1/measurements")
    screen = render(rows, "online", "round done", links, width=80, height=40)
    lines = screen.splitlines()
    assert len(lines) <= 40
    assert all(len(line) <= 80 for line in lines)
    assert lines[0].startswith("Kuzot - live view")  # the header is never scrolled away
    assert "API: http://127.0.0.1:8080/api/v1/measurements" in lines  # each link whole
    assert "blocked 1  down 195" in lines
    shown = [line for line in lines if line.startswith("https://")]
    assert shown[0].split()[:2] == ["https://zzz.kloop.kg/", "blocked"]
    assert lines[-1].startswith(f"... {196 - len(shown)} more not shown")


def test_a_short_list_is_whole_and_in_url_order_on_a_terminal() -> None:
    rows = _rows(5, blocked=("https://zzz.kloop.kg/",))
    lines = render(rows, "online", "round done", "", width=80, height=40).splitlines()
    shown = [line.split()[0] for line in lines if line.startswith("https://")]
    assert shown == sorted(shown) and len(shown) == 6
    assert not any(line.startswith("...") for line in lines)
