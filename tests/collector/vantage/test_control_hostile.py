"""The control vantage (``POST /api/v1/control``) of the real collector process, asked to fetch
hostile URLs: every answer is a view with a failure string (never a 5xx), a burst beyond
``control.max_concurrent`` is refused with 503 and ``Retry-After``, and the process's peak
memory stays within a budget while it serves them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from probe.core import failures
from tests.helpers import hostile_servers as servers
from tests.helpers.collector_process import Served, serve

# Growth of the collector's peak RSS over its size at start while serving every class below;
# one control measurement is bounded by the probe client's limits (about 1 MiB).
MEMORY_BUDGET = 64 * 1024 * 1024
CONCURRENT = 3


def _vm(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Served]:
    config = tmp_path / "collector.yaml"
    config.write_text(f"database: {tmp_path / 'kuzot.sqlite'}\n"
                      "control:\n  allow_private_addresses: true\n  timeout: 4s\n"
                      f"  max_concurrent: {CONCURRENT}\n")
    async with serve("--config", str(config)) as served:
        yield served


async def _control(session: aiohttp.ClientSession, served: Served,
                   url: str) -> tuple[int, dict[str, str], Any]:
    async with session.post(served.base + "/api/v1/control",
                            json={"http_request": url, "tcp_connect": []}) as response:
        return response.status, dict(response.headers), await response.json()


HOSTILE = [
    # 47-byte lines: the 1,001st line comes long before 256 KiB of them.
    (servers.endless_header_lines(), failures.HTTP_TOO_MANY_HEADERS),
    (servers.endless_header_line(), failures.HTTP_HEADERS_TOO_LARGE),
    (servers.big_header(), failures.HTTP_HEADERS_TOO_LARGE),
    (servers.many_headers(100_000), failures.HTTP_TOO_MANY_HEADERS),
    (servers.long_chunk_size(), failures.unknown("http protocol error: illegal chunk header")),
    (servers.redirect(b"http://[::1/evil"), failures.HTTP_INVALID_REDIRECT_URL),
    (servers.redirect(b"http://host:99999/"), failures.HTTP_INVALID_REDIRECT_URL),
]


async def test_hostile_urls_give_failures_within_the_memory_budget(collector: Served) -> None:
    pid = collector.process.pid
    at_start = _vm(pid, "VmRSS")
    async with aiohttp.ClientSession() as session:
        for behaviour, failure in HOSTILE:
            async with servers.serve(behaviour) as site:
                status, _headers, view = await _control(session, collector, site.url())
            assert status == 200
            assert view["http_request"]["failure"] == failure
        async with servers.serve(servers.huge_chunk()) as site:
            status, _headers, view = await _control(session, collector, site.url())
        assert status == 200
        assert view["http_request"]["failure"] is None
        assert view["http_request"]["body_length"] == 512 * 1024
    assert _vm(pid, "VmHWM") - at_start < MEMORY_BUDGET


async def test_a_burst_beyond_the_limit_is_refused_with_retry_after(collector: Served) -> None:
    silent = asyncio.Event()

    async def hold(writer: asyncio.StreamWriter) -> None:
        await silent.wait()  # never answers: each control measurement runs to its timeout

    async with servers.serve(hold) as site, aiohttp.ClientSession() as session:
        answers = await asyncio.gather(*(_control(session, collector, site.url())
                                         for _ in range(CONCURRENT + 5)))
        silent.set()
    statuses = sorted(status for status, _h, _v in answers)
    assert statuses == [200] * CONCURRENT + [503] * 5
    for status, headers, view in answers:
        if status == 503:
            assert headers["Retry-After"] == "5"
            assert "busy" in view["error"]
        else:
            assert view["http_request"]["failure"] == failures.TIMEOUT
