"""Size of a web connectivity measurement in OONI's format, and speed of ``probe analyze``.

    python bench/measurement_format.py [--repeat 20]

1. The real probe measures pages of several sizes served on loopback (no control: only the
   probe's own records count here), plus a chain of three redirects whose every hop carries a
   large body. Each measurement is serialized as the spool and the uploader do (compact JSON,
   then gzip as uploads are sent) and compared with the same measurement in the format Kuzot
   wrote before the response ``body`` (a 2 KiB ``body_sample``).
2. ``python -m probe analyze --json`` on OONI's 56 QA measurements repeated ``--repeat`` times
   in one gzip JSON-lines file: wall time and measurements per second.

Prints tables; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from probe.core.measurement import envelope  # noqa: E402
from probe.core.wire import body_bytes  # noqa: E402
from probe.nettests.web_connectivity import measure as web_check  # noqa: E402

CORPUS = REPO / "tests" / "testdata" / "ooni_qa"


WORDS = ("Кыргызстан жаңылыктары Бишкек Алматы парламент сайлоо news election court "
         "protest journalist report budget Ош Шымкент referendum internet").split()


def _page(kib: int) -> str:
    """A page of ``kib`` KiB of words in random order: it compresses about as a real news
    page does (a repeated line would compress a hundredfold and hide the cost)."""
    rng = random.Random(kib)
    parts = ["<html><head><title>News</title></head><body>\n"]
    size = len(parts[0].encode())
    while size < kib * 1024:
        line = f"<p id=\"{rng.getrandbits(32):08x}\">" + " ".join(
            rng.choice(WORDS) for _ in range(12)) + "</p>\n"
        parts.append(line)
        size += len(line.encode())
    return "".join(parts)


async def _serve(pages: dict[str, str], hops: int) -> tuple[web.AppRunner, int]:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=pages[request.match_info["name"]], content_type="text/html")

    async def hop(request: web.Request) -> web.Response:
        n = int(request.match_info["n"])
        target = f"/hop/{n + 1}" if n + 1 < hops else "/page/big"
        return web.Response(status=302, text=pages["big"], content_type="text/html",
                            headers={"Location": target})

    app = web.Application()
    app.router.add_get("/page/{name}", page)
    app.router.add_get("/hop/{n}", hop)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, int(port)


def _older(m: dict[str, Any]) -> dict[str, Any]:
    old = json.loads(json.dumps(m))
    for request in old["test_keys"]["requests"]:
        response = request.get("response")
        if response:
            body = body_bytes(response.pop("body"))
            response["body_sample"] = body[:2048].decode("utf-8", "replace")
    return old


def _sizes(m: dict[str, Any]) -> tuple[int, int]:
    raw = json.dumps(m, ensure_ascii=False, separators=(",", ":")).encode()
    return len(raw), len(gzip.compress(raw))


async def sizes() -> list[tuple[str, int, int, int, int]]:
    sizes_kib = (5, 50, 200, 600)
    pages = {str(k): _page(k) for k in sizes_kib} | {"big": _page(600)}
    runner, port = await _serve(pages, hops=3)
    options = web_check.WebOptions(dial_loopback=True)
    rows = []
    try:
        cases = [(f"page of {k} KiB", f"http://127.0.0.1:{port}/page/{k}") for k in sizes_kib]
        cases.append(("3 redirects + page, 600 KiB bodies each", f"http://127.0.0.1:{port}/hop/0"))
        for name, url in cases:
            keys = await web_check.measure(url, options, None)
            m = envelope(test_name="web_connectivity", input_=url, test_keys=keys,
                         started=datetime.now(UTC), runtime=1.0)
            new_raw, new_gz = _sizes(m)
            old_raw, old_gz = _sizes(_older(m))
            rows.append((name, old_raw, old_gz, new_raw, new_gz))
    finally:
        await runner.cleanup()
    return rows


def analyze_speed(repeat: int) -> tuple[int, float]:
    measurements = []
    for path in sorted(CORPUS.glob("*/*.json")):
        with path.open(encoding="utf-8") as handle:
            measurements.append(json.load(handle))
    with tempfile.TemporaryDirectory() as tmp:
        dump = Path(tmp) / "corpus.jsonl.gz"
        with gzip.open(dump, "wt", encoding="utf-8") as out:
            for _ in range(repeat):
                for m in measurements:
                    out.write(json.dumps(m, ensure_ascii=False) + "\n")
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "probe", "analyze", "--json", str(dump)],
                                cwd=REPO, capture_output=True, text=True, check=True)
        wall = time.perf_counter() - started
    return len(result.stdout.splitlines()), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    print("| measurement | before: JSON bytes | gzip | now: JSON bytes | gzip |")
    print("|---|---:|---:|---:|---:|")
    for name, old_raw, old_gz, new_raw, new_gz in asyncio.run(sizes()):
        print(f"| {name} | {old_raw:,} | {old_gz:,} | {new_raw:,} | {new_gz:,} |")
    count, wall = analyze_speed(args.repeat)
    print(f"\nprobe analyze --json: {count} measurements in {wall:.2f} s "
          f"({count / wall:.0f}/s, including interpreter start)")


if __name__ == "__main__":
    main()
