"""Every file or folder of the tree the README names exists.

A newcomer reads the architecture section to find the code; after a move of modules into
packages, a stale ``probe/web_test.py`` sends them to a file that is gone. This test reads
every repository path the README writes (``probe/...``, ``collector/...``, ``configs/...``,
``tests/...``, ``bench/...``, ``dashboards/...``), expands ``{a,b}`` and ``*``, and fails
naming each one that matches nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# A path starts at a top-level folder of the repository, not in the middle of another path
# or URL, and ends at a file name with an extension or at a folder's trailing slash.
PATH = re.compile(
    r"(?<![\w./-])((?:probe|collector|configs|tests|bench|dashboards)/[\w./{},*-]*\w(?:/)?)")
BRACES = re.compile(r"\{([^{}]*)\}")


def expand(path: str) -> list[str]:
    """``a_{x,y}.csv`` -> ``a_x.csv``, ``a_y.csv``; one level of braces at a time."""
    match = BRACES.search(path)
    if match is None:
        return [path]
    return [variant
            for choice in match.group(1).split(",")
            for variant in expand(path[:match.start()] + choice + path[match.end():])]


def readme_paths(text: str) -> list[str]:
    """The repository paths named in ``text``: files with an extension and folders with ``/``."""
    found = []
    for match in PATH.finditer(text):
        path = match.group(1)
        if path.endswith("/") or re.search(r"\.[A-Za-z]+$", path.split("/")[-1]):
            found.extend(expand(path))
    return sorted(set(found))


def exists(path: str) -> bool:
    if "*" in path:
        return any(ROOT.glob(path))
    return (ROOT / path).exists()


def test_extractor_reads_the_forms_the_readme_uses() -> None:
    text = ("see `probe/core/model.py`, data in `probe/x/data/f_{http,dns}.csv`, "
            "`dashboards/*.json`, the folder `collector/store/`, not tests/ alone nor "
            "https://example.org/probe/a.py or `python -m probe check`")
    assert readme_paths(text) == ["collector/store/", "dashboards/*.json",
                                  "probe/core/model.py", "probe/x/data/f_dns.csv",
                                  "probe/x/data/f_http.csv"]


def test_every_path_the_readme_names_exists() -> None:
    paths = readme_paths(README.read_text(encoding="utf-8"))
    assert len(paths) > 50, "the README names the modules of both packages"
    missing = [path for path in paths if not exists(path)]
    assert missing == [], f"README.md names paths that do not exist: {missing}"
