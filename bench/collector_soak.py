"""Soak: 100,000 measurements from 200 simulated probes; the collector's memory stays flat.

Run: ``python bench/collector_soak.py [--measurements 100000] [--probes 200]``

Each simulated probe has its own token and posts batches of 50 back to back, 20 probes
at a time. The collector's RSS (from /proc) is sampled after each tenth of the run, right
after a /metrics scrape; the table shows it, and the verdict compares the last sample with
the one after the first tenth (warm-up excluded): flat means within 10%.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import subprocess
import sys
import tempfile
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.collector_ingest import Collector, measurement  # noqa: E402

# Issue many tokens in one process rather than one CLI call per probe.
ISSUE_TOKENS = """
import asyncio, sys
from collector.store import open_store
from collector.api.tokens import new_token, token_hash

async def main():
    store = await open_store(sys.argv[1])
    for i in range(int(sys.argv[2])):
        token = new_token()
        await store.add_token(f"soak{i}", token_hash(token), "2026-01-01 00:00:00")
        print(token)
    await store.close()

asyncio.run(main())
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def soak(base: str, tokens: list[str], total: int, pid: int) -> list[tuple[int, float]]:
    per_probe = total // len(tokens)
    samples: list[tuple[int, float]] = []
    sent = tenths = 0
    semaphore = asyncio.Semaphore(20)

    async def probe(index: int, token: str) -> None:
        nonlocal sent, tenths
        async with semaphore, aiohttp.ClientSession() as session:
            for start in range(0, per_probe, 50):
                docs = [measurement(f"p{index}m{start + i}{secrets.token_hex(3)}",
                                    f"https://t{(start + i) % 40}.example/")
                        for i in range(min(50, per_probe - start))]
                async with session.post(base + "/api/v1/measurements",
                                        json={"measurements": docs},
                                        headers={"Authorization": f"Bearer {token}"}) as r:
                    if r.status != 200:
                        raise RuntimeError(f"HTTP {r.status}: {await r.text()}")
                sent += len(docs)
                if sent * 10 // total > tenths:
                    tenths = sent * 10 // total  # claimed before awaiting: one sample a tenth
                    at = sent
                    # Scraped as Prometheus would, so the metrics' caches are in the soak too.
                    async with session.get(base + "/metrics") as metrics:
                        await metrics.read()
                    samples.append((at, rss_mb(pid)))

    await asyncio.gather(*(probe(i, t) for i, t in enumerate(tokens)))
    samples.append((sent, rss_mb(pid)))
    return samples


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--measurements", type=int, default=100_000)
    parser.add_argument("--probes", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        collector = Collector(tmp, str(tmp / "soak.sqlite"))
        with collector as (base, _token):
            out = subprocess.run(
                [sys.executable, "-c", ISSUE_TOKENS, str(tmp / "soak.sqlite"),
                 str(args.probes)], check=True, capture_output=True, text=True, cwd=ROOT)
            tokens = out.stdout.split()
            assert len(tokens) == args.probes
            samples = asyncio.run(soak(base, tokens, args.measurements, collector.process.pid))
    print(f"{args.measurements:,} measurements from {args.probes} probes (batches of 50)")
    print(f"{'measurements sent':>18} {'collector RSS MB':>17}")
    for sent, rss in samples:
        print(f"{sent:>18,} {rss:>17.1f}")
    baseline, final = samples[0][1], samples[-1][1]
    growth = (final - baseline) / baseline
    verdict = "flat" if abs(growth) <= 0.10 else "NOT flat"
    print(f"RSS after warm-up {baseline:.1f} MB, at the end {final:.1f} MB: "
          f"{growth:+.1%} ({verdict}; goal within 10%)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
