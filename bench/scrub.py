"""Cost of scrubbing the submitter's address from a measurement, as the collector does it.

Run: ``python bench/scrub.py [--repeat 3]``

The collector walks every string of every uploaded measurement with the probe's matcher
(``probe.core.scrub.scrub_document`` with ``same_address``) before storing it; this prints the CPU
time per measurement for three documents, beside a JSON round trip of the same document
(which ingest pays anyway) for scale:

- the small web_connectivity measurement of ``bench/collector_ingest.py`` (about 1.1 KB);
- the same with a 50 KB HTML body of news-like text (dates, times, links, numbers);
- the same with 67 KB of text made of nothing but near-miss candidates (dates, dashed
  words, private addresses): the matcher's worst case short of real addresses.

CPU time (``time.process_time``) rather than wall time, because the reference machine is
shared; the median of ``--repeat`` runs is printed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from collector_ingest import measurement  # noqa: E402

from probe.core.scrub import same_address, scrub_document  # noqa: E402

SUBMITTER = "203.0.113.7"


def news_page(size: int, rng: random.Random) -> str:
    words = ["власти", "заявили", "protest", "Bishkek", "Astana", "internet", "blocked",
             "the", "and", "2024-05-01", "12:30", "https://kloop.kg/blog/2024/05/01/",
             "page-2", "#section", "100", "3.5%", "+996", "Kloop", "report", "VPN"]
    out: list[str] = ["<!doctype html><html><head><title>News</title></head><body>"]
    length = len(out[0])
    while length < size:
        paragraph = "<p>" + " ".join(rng.choice(words) for _ in range(60)) + "</p>"
        out.append(paragraph)
        length += len(paragraph)
    return "".join(out) + "</body></html>"


def with_body(document: dict[str, Any], body: str) -> dict[str, Any]:
    keys = dict(document["test_keys"])
    keys["requests"] = [{"request": {"url": document["input"], "method": "GET"},
                         "response": {"code": 200, "body": body, "headers": {}}}]
    return {**document, "test_keys": keys}


def cpu_per_call(operation: Callable[[], object], calls: int) -> float:
    started = time.process_time()
    for _ in range(calls):
        operation()
    return (time.process_time() - started) / calls


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = random.Random(16)
    small = measurement("bench-scrub-0001")
    near_misses = " ".join(["2024-05-01 12:30 a-b-c 10.0.0.1"] * 2200)
    documents = {
        "web_connectivity, 1.1 KB": (small, 3000),
        "with a 50 KB news page body": (with_body(small, news_page(50_000, rng)), 200),
        "with 67 KB of near misses": (with_body(small, near_misses), 20),
    }
    predicate = same_address(SUBMITTER)
    assert predicate is not None
    print("| document | bytes | scrub, µs CPU | JSON round trip, µs CPU |")
    print("|---|---:|---:|---:|")
    for name, (document, calls) in documents.items():
        size = len(json.dumps(document, ensure_ascii=False).encode())
        scrub = median(cpu_per_call(lambda d=document: scrub_document(d, predicate), calls)
                       for _ in range(args.repeat))
        trip = median(cpu_per_call(lambda d=document: json.loads(json.dumps(d)), calls)
                      for _ in range(args.repeat))
        print(f"| {name} | {size:,} | {scrub * 1e6:,.0f} | {trip * 1e6:,.0f} |")


if __name__ == "__main__":
    main()
