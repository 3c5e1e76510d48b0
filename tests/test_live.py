"""The quickstart's live view: a pure renderer, tested on rows."""

from __future__ import annotations

from probe.live import render


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
