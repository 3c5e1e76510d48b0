"""What scrubbing the submitter's address adds to validating uploads from a remote address.

Run: ``python bench/scrub_remote.py [--batches 10] [--rounds 7]``

The measurements are ``bench/ingest_stages.py``'s (a real probe's web_connectivity
measurement of a 4 KiB page, about 7.8 KB of JSON, varied), in batches of 100.
``validate_batch`` runs on them from loopback (not scrubbed) and from a remote address
(every string scrubbed for it), with ``scrub_document`` as it is (**now**: the strings'
joined text scanned for what the matcher's passes need, the matcher only on the strings a
scan finds) and as it was (**before**: the matcher on every distinct string, the walk kept
below), alternately,
``--rounds`` times; each cell is the median CPU time (``time.process_time``) per
measurement. ``scrub_document`` alone is timed the same way, and beside it the first idea for
the fast path: the whole matcher once on the joined text, the walk only when that changed
it. Prints one table; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import collector.api.validate as validate_module  # noqa: E402
from bench.collector_scale import Generator, template  # noqa: E402
from bench.ingest_stages import BATCH, batches  # noqa: E402
from collector.api.validate import parse_json, validate_batch  # noqa: E402
from collector.config import Limits  # noqa: E402
from probe.core import scrub  # noqa: E402

REMOTE = "203.0.113.7"


def walk_each_string(value: Any, is_own: scrub.Predicate) -> tuple[Any, bool]:
    """``scrub_document`` before: the matcher on each distinct string of the document."""
    changed = False
    seen: dict[str, str] = {}

    def walk(item: Any) -> Any:
        nonlocal changed
        if isinstance(item, str):
            out = seen.get(item)
            if out is None:
                out = seen[item] = scrub.scrub_matching(item, is_own)
            if out != item:
                changed = True
            return out
        if isinstance(item, list):
            return [walk(v) for v in item]
        if isinstance(item, dict):
            return {walk(k): binary(v) if k == "body" and scrub._is_base64(v) else walk(v)
                    for k, v in item.items()}
        return item

    def binary(body: dict[str, Any]) -> dict[str, Any]:
        nonlocal changed
        try:
            text = base64.b64decode(body["data"], validate=True).decode("latin-1")
        except (binascii.Error, ValueError):
            return {walk(k): walk(v) for k, v in body.items()}
        out = scrub.scrub_matching(text, is_own)
        if out == text:
            return body
        changed = True
        return {**body, "data": base64.b64encode(out.encode("latin-1")).decode("ascii")}

    result = walk(value)
    return (result, True) if changed else (value, False)


def whole_matcher_on_joined_text(value: Any, is_own: scrub.Predicate) -> tuple[Any, bool]:
    """The first idea: every pass of the matcher over all the strings joined at once."""
    texts = scrub._texts(value)
    joined = "\n".join(texts)
    if scrub.scrub_matching(joined, is_own) == joined:
        return value, False
    return walk_each_string(value, is_own)


def cpu_us(work: Callable[[], Any], measurements: int) -> float:
    started = time.process_time()
    work()
    return 1e6 * (time.process_time() - started) / measurements


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    generator = Generator(asyncio.run(template()))
    parsed = [parse_json(b)["measurements"] for b in batches(generator, args.batches)]
    documents = [m for items in parsed for m in items]
    n = len(documents)
    limits, now = Limits(), datetime.now(UTC)
    own = scrub.same_address(REMOTE)
    assert own is not None
    now_scrub = scrub.scrub_document

    def validating(submitter: str, scrubber: Callable[..., tuple[Any, bool]]) -> Callable[[], Any]:
        def work() -> None:
            validate_module.scrub_document = scrubber  # type: ignore[assignment]
            try:
                for items in parsed:
                    validate_batch(items, limits, now, "bench", submitter, None)
            finally:
                validate_module.scrub_document = now_scrub
        return work

    def scrubbing(scrubber: Callable[..., tuple[Any, bool]]) -> Callable[[], Any]:
        return lambda: [scrubber(m, own) for m in documents]

    rows: dict[str, list[Callable[[], Any]]] = {
        "validate_batch from loopback (not scrubbed)": [
            validating("127.0.0.1", walk_each_string), validating("127.0.0.1", now_scrub)],
        f"validate_batch from a remote address ({REMOTE})": [
            validating(REMOTE, walk_each_string), validating(REMOTE, now_scrub),
            validating(REMOTE, whole_matcher_on_joined_text)],
        "scrub_document alone": [
            scrubbing(walk_each_string), scrubbing(now_scrub),
            scrubbing(whole_matcher_on_joined_text)],
    }
    times: dict[str, list[list[float]]] = {name: [[] for _ in works]
                                          for name, works in rows.items()}
    for _ in range(args.rounds):
        for name, works in rows.items():
            for index, work in enumerate(works):
                times[name][index].append(cpu_us(work, n))
    print(f"{n:,} measurements in batches of {BATCH}, median of {args.rounds} alternated rounds")
    print("| CPU us per measurement | before (each string) | now (joined-text scans) "
          "| whole matcher on the joined text |")
    print("|---|---:|---:|---:|")
    for name, columns in times.items():
        cells = [f"{statistics.median(c):,.0f}" for c in columns]
        cells += ["-"] * (3 - len(cells))
        print(f"| {name} | {' | '.join(cells)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
