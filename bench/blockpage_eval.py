"""The blockpage rules on real pages: false positives, recall, and the cost of matching.

    python bench/blockpage_eval.py [--ooni PATH ...] [--blockpages DIR ...] [--repeat 2000]

* False positives: the unknown-blockpage rule (``probe.nettests.web_connectivity.blockphrases``) in
  its most permissive setting (every page taken as differing from the control, no control length)
  over every page the lab's sites serve and every response body and control title of the OONI
  measurements under ``--ooni`` (files of one measurement, or of one per line, or directories of
  them; default ``tests/testdata``). Also the fingerprints that would decide with no known country.
* Recall: over ``--blockpages`` (directories of captured blockpage HTML files; default
  ``tests/testdata/blockpages``), how many the phrase rule names from the probe's 2 KiB
  sample and title, and how many a fingerprint names in the country of the file's name
  (``isp_ru_...`` is RU), or with either.
* Cost: microseconds to judge one 2 KiB page with every fingerprint and phrase (median of
  ``--repeat`` runs), on a lab site page (no match: every pattern is tried) and a blockpage.

Prints tables; asserts nothing
(``tests/probe/nettests/web_connectivity/test_blockphrases.py`` asserts zero false positives
on the same inputs).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probe.nettests.web_connectivity import (
    blockpages,  # noqa: E402
    blockphrases,
)
from tests.lab import pages  # noqa: E402
from tests.probe.nettests.web_connectivity.test_blockphrases import _bodies, lab_pages, page  # noqa: E402


def _measurements(paths: list[Path]) -> list[tuple[str, dict[str, Any]]]:
    import json

    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*.json*")))]
    out = []
    for path in files:
        text = path.read_text("utf-8", errors="replace")
        for line in [text] if path.suffix == ".json" else text.splitlines():
            try:
                measurement = json.loads(line)
            except ValueError:
                continue
            out += [(f"{path.name} {where}", r) for r, where in _bodies(measurement)]
    return out


def false_positives(ooni: list[Path]) -> None:
    lab = [(name, page(body)) for name, body in lab_pages()]
    measured = _measurements(ooni)
    print("| pages | checked | phrase rule | fingerprint (no country) |")
    print("|---|---:|---:|---:|")
    for label, items in (("lab site pages", lab), ("OONI measurement bodies", measured)):
        phrase = [n for n, r in items if blockphrases.match(r, control_length=None)]
        known = [n for n, r in items if blockpages.match_blockpage(r, None)]
        print(f"| {label} | {len(items)} | {len(phrase)} | {len(known)} |")
        for name in phrase + known:
            print(f"  flagged: {name}", file=sys.stderr)


def recall(directories: list[Path]) -> None:
    files = sorted(f for d in directories for f in d.glob("*.html"))
    by_phrase = by_fingerprint = either = unreadable = 0
    for path in files:
        try:
            body = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            unreadable += 1  # the probe decodes bodies as UTF-8: a cp1251 page is unreadable
            continue
        response = page(body)
        parts = path.name.split("_")
        cc = parts[1].upper() if len(parts) > 2 and len(parts[1]) == 2 else None
        phrase = blockphrases.match(response, control_length=40_000) is not None
        known = blockpages.match_blockpage(response, cc) is not None
        by_phrase += phrase
        by_fingerprint += known
        either += phrase or known
    readable = len(files) - unreadable
    print("| blockpages (UTF-8) | phrase rule | fingerprint in its country | either |")
    print("|---:|---:|---:|---:|")
    print(f"| {readable} | {by_phrase} | {by_fingerprint} | {either} |")
    if unreadable:
        print(f"({unreadable} more not in UTF-8)")


def cost(repeat: int) -> None:
    print("| page | µs per page (median) |")
    print("|---|---:|")
    for label, body in (("lab site page (no match)", pages.site_page("www.example.kg")),
                        ("unknown Russian blockpage", pages.UNKNOWN_BLOCKPAGE)):
        response = page(body)
        blockpages.match_blockpage(response, "KG")  # load the data once
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            blockpages.match_blockpage(response, "KG")
            blockphrases.match(response, control_length=8000)
            times.append(time.perf_counter() - start)
        print(f"| {label} | {statistics.median(times) * 1e6:.0f} |")


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ooni", type=Path, nargs="*", default=[root / "tests" / "testdata"])
    parser.add_argument("--blockpages", type=Path, nargs="*",
                        default=[root / "tests" / "testdata" / "blockpages"])
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    print(f"{len(blockpages.fingerprints())} fingerprints, {len(blockphrases.phrases())} phrases")
    false_positives(args.ooni)
    recall(args.blockpages)
    cost(args.repeat)


if __name__ == "__main__":
    main()
