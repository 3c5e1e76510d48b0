"""A hostile HTTP server against the real ``probe check`` process: bounded memory and time,
always a JSON measurement, the hostility recorded as a failure string (or, for a chunk that
declares 2**64-1 bytes, as a truncated body snapshot: a big chunk is not an error by itself).
"""

from __future__ import annotations

import pytest

from probe.core import failures
from tests.helpers import hostile_servers as servers
from tests.probe.hostile.run import COLLECTOR_DOCUMENT_LIMIT, Checked, requests_of, run_check

MEMORY_CAP = 100 * 1024 * 1024
# The check's configured timeouts (run.TIMEOUTS) add up to 14 s; the rest is start-up.
TIME_CAP = 40.0


def assert_bounded(checked: Checked) -> None:
    assert checked.returncode == 0, checked.stderr.decode()[-2000:]
    assert checked.peak_rss_bytes <= MEMORY_CAP, checked.peak_rss_bytes
    assert checked.seconds < TIME_CAP
    assert len(checked.stdout) < COLLECTOR_DOCUMENT_LIMIT, len(checked.stdout)
    assert checked.measurement["test_name"] == "web_connectivity"


@pytest.mark.parametrize(("behaviour", "failure"), [
    # 47-byte lines: the 1,001st line comes long before 256 KiB of them.
    (servers.endless_header_lines(), failures.HTTP_TOO_MANY_HEADERS),
    (servers.endless_header_line(), failures.HTTP_HEADERS_TOO_LARGE),
    (servers.big_header(), failures.HTTP_HEADERS_TOO_LARGE),
    (servers.many_headers(100_000), failures.HTTP_TOO_MANY_HEADERS),
    (servers.many_headers(20_000), failures.HTTP_TOO_MANY_HEADERS),
    (servers.minimal_headers(65_000), failures.HTTP_TOO_MANY_HEADERS),
    (servers.big_header(100 * 1024), failures.HTTP_HEADER_LINE_TOO_LONG),
    (servers.long_chunk_size(), failures.unknown("http protocol error: illegal chunk header")),
], ids=["endless_header_lines", "endless_header_line", "1mb_header", "100k_headers",
        "20k_headers", "65k_minimal_headers", "100kb_header_line", "41_digit_chunk_size"])
async def test_hostile_response_is_a_failure_in_the_measurement(
        behaviour: servers.Writer, failure: str) -> None:
    async with servers.serve(behaviour) as served:
        checked = await run_check(served.url())
    assert_bounded(checked)
    [request] = requests_of(checked)
    assert request["failure"] == failure
    assert request["response"] is None
    assert failures.is_failure_string(request["failure"])


async def test_chunk_of_two_to_the_64_is_cut_at_the_body_snapshot() -> None:
    async with servers.serve(servers.huge_chunk()) as served:
        checked = await run_check(served.url())
    assert_bounded(checked)
    [request] = requests_of(checked)
    assert request["failure"] is None
    assert request["response"]["body_is_truncated"] is True
    assert request["response"]["x_body_length"] == 512 * 1024


async def test_headers_under_the_limits_are_recorded_capped() -> None:
    """500 headers are a legal response: it is measured, and what is recorded is capped."""
    async with servers.serve(servers.many_headers(500)) as served:
        checked = await run_check(served.url())
    assert_bounded(checked)
    [request] = requests_of(checked)
    response = request["response"]
    assert request["failure"] is None and response["code"] == 200
    assert len(response["headers_list"]) == 100
    assert response["x_headers_truncated"] == 401  # 500 filler lines + Content-Length - 100


async def test_a_redirect_loop_with_the_largest_recordable_hops_fits_the_collector() -> None:
    """Eleven hops, each with the longest Location followed, 200 KB of non-ASCII headers (two
    bytes each in UTF-8) and a 512 KiB body that doubles in JSON: what is recorded stays under
    the collector's 2 MiB."""
    headers = b"".join(b"X-%d: " % i + b"\xff" * 2000 + b"\r\n" for i in range(100))
    location = b"/" + b"\xff" * (8 * 1024 - 40)
    body = b'"\\' * (256 * 1024)
    response = (b"HTTP/1.1 302 Found\r\n" + headers + b"Location: " + location
                + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    async with servers.serve(servers.fixed(response)) as served:
        checked = await run_check(served.url())
    assert_bounded(checked)
    requests = requests_of(checked)
    assert len(requests) == 11
    assert requests[0]["failure"] == failures.TOO_MANY_REDIRECTS
    assert all(r["response"]["x_headers_truncated"] > 0 for r in requests)
    assert requests[1]["response"]["body_is_truncated"] is True  # the bodies' own budget
