"""Hostile clients against the real collector process on loopback: each input class answers
its exact 4xx (never a 5xx), nothing of it is stored or served wrong, and slow clients are
disconnected in bounded time while everyone else is served.

Classes: bearer tokens with bytes that are not printable ASCII; ``since``/``until`` that an
offset carries out of the representable years, and other out-of-range numeric parameters;
JSON numbers no reader can hold; a body claiming another probe's identity; the submitter's
address in every spelling (behind a reverse proxy, so the address comes from
``X-Forwarded-For``); security headers on every kind of answer; and slow clients (slowloris:
hundreds of connections sending their headers a line at a time).
"""

from __future__ import annotations

import asyncio
import json
import socket
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from collector.store.body import unpack
from tests.helpers.collector_process import CollectorProcess, started

HEADER_TIMEOUT = 2.0
OWN_V4 = "203.0.113.7"
OWN_V6 = "2001:db8:42:1::7"
STRANGERS = ["203.0.113.70", "198.51.100.7", "2001:db8:42:2::7"]
V4_SPELLINGS = [
    "203.0.113.7", "203.000.113.007", "::ffff:cb00:7107", "::FFFF:CB00:7107",
    "::ffff:203.0.113.7", "0000:0000:0000:0000:0000:ffff:cb00:7107", "64:ff9b::203.0.113.7",
    "7.113.0.203.in-addr.arpa", "7.113.0.203.IN-ADDR.ARPA", "203-0-113-7.example.net",
    "ip-203-0-113-7.dyn.example.kg", "203.0.113.7.example.net", "7-113-0-203.example.net",
    "203_0_113_7",
]
V6_SPELLINGS = [
    "2001:db8:42:1::7", "2001:0DB8:0042:0001:0000:0000:0000:0007", "[2001:db8:42:1::7]:443",
    "2001:db8:42:1::7%eth0",
    "7.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.2.4.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    "2001-db8-42-1--7.example.net", "2001-0db8-0042-0001-0000-0000-0000-0007.example.net",
    "https://x/?ip=2001%3Adb8%3A42%3A1%3A%3A7",
]


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[CollectorProcess,
                                                                           str]]:
    with started(tmp_path_factory.mktemp("hostile-clients"),
                 "client_address_header: X-Forwarded-For\n"
                 f"limits: {{rate_per_minute: 1000000, header_timeout: {HEADER_TIMEOUT}s}}\n",
                 "honest-probe") as collector:
        yield collector


def request(base: str, path: str, body: Any = None, token: str | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    data = None if body is None else (body if isinstance(body, bytes)
                                      else json.dumps(body).encode())
    req = urllib.request.Request(base + path, data=data,
                                 method="GET" if data is None else "POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=15) as response:
            return int(response.status), dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), dict(exc.headers), exc.read()


def raw_request(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Send bytes no HTTP library would (any header bytes); the status and the body."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(head + b"Content-Length: " + str(len(body)).encode()
                     + b"\r\nConnection: close\r\n\r\n" + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    status_line, _, rest = received.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def measurement(uid: str, **changes: Any) -> dict[str, Any]:
    return {"measurement_uid": uid, "probe_cc": "KZ", "probe_asn": "AS9198",
            "test_name": "web_connectivity",
            "measurement_start_time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
            "input": "https://vlast.kz/", "annotations": {"platform": "linux"},
            "test_keys": {"analysis": {"verdict": "ok"}}, **changes}


def strict_json(raw: bytes) -> Any:
    def refuse(name: str) -> Any:
        raise AssertionError(f"served {name}, which is not JSON")

    return json.loads(raw, parse_constant=refuse)


# ------------------------------------------------------------------ tokens


@pytest.mark.parametrize("path", ["/api/v1/measurements", "/api/v1/heartbeat"])
@pytest.mark.parametrize(("value", "expected"), [
    (b"Bearer \xff\xfe", 401), ("Bearer kz_é".encode(), 401), (b"Bearer kz_\xc3", 401),
    (b"Bearer \xe2\x80\x8b", 401), (b"Bearer ", 401),
    # Control characters never reach the collector: aiohttp's HTTP parser refuses them.
    (b"Bearer kz_\x01abc", 400), (b"Bearer kz_a\x7fb", 400),
], ids=["latin1", "utf8", "truncated-utf8", "zero-width", "empty", "control", "delete"])
def test_tokens_that_are_not_printable_ascii_are_refused(
        collector: tuple[CollectorProcess, str], path: str, value: bytes,
        expected: int) -> None:
    process, _ = collector
    status, body = raw_request(
        process.port, b"POST " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nAuthorization: " + value + b"\r\n", b"{}")
    assert status == expected, body
    if expected == 401:
        assert strict_json(body)["error"] in ("malformed bearer token", "missing bearer token")
    else:
        # Answered by the parser, as JSON, without quoting the token back.
        assert strict_json(body) == {"error": "Invalid header value char"}


def test_a_long_unknown_token_is_403(collector: tuple[CollectorProcess, str]) -> None:
    process, _ = collector
    status, _, body = request(process.base, "/api/v1/measurements", measurement("long-tok-01"),
                              token="kz_" + "A" * 6000)
    assert status == 403 and strict_json(body)["error"] == "unknown token"


# ------------------------------------------------------------------ query parameters


@pytest.mark.parametrize("path", ["/api/v1/measurements", "/api/v1/aggregation",
                                  "/api/v1/events"])
@pytest.mark.parametrize("name", ["since", "until"])
@pytest.mark.parametrize("value", [
    "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59.999999-23:59", "0001-01-01", "9999-12-31T23:59:59Z",
])
def test_times_out_of_range_are_400_with_the_reason(
        collector: tuple[CollectorProcess, str], path: str, name: str, value: str) -> None:
    process, _ = collector
    query = urllib.parse.urlencode({name: value})
    status, _, body = request(process.base, f"{path}?{query}")
    assert status == 400, body
    assert strict_json(body)["error"] == f"{name}: year out of range"


@pytest.mark.parametrize(("path", "query", "reason"), [
    ("/api/v1/measurements", {"limit": "²"}, "limit: an integer from 1 to"),
    ("/api/v1/measurements", {"limit": "１０"}, "limit: an integer from 1 to"),
    ("/api/v1/measurements", {"limit": "9" * 5000}, "limit: an integer from 1 to"),
    ("/api/v1/measurements", {"limit": "99999999999999999999"}, "limit: an integer from 1 to"),
    ("/api/v1/measurements", {"limit": "-1"}, "limit: an integer from 1 to"),
    ("/api/v1/measurements", {"limit": "1e3"}, "limit: an integer from 1 to"),
    ("/api/v1/events", {"limit": "٣"}, "limit: an integer from 1 to"),
    ("/api/v1/events", {"limit": "9" * 5000}, "limit: an integer from 1 to"),
    ("/api/v1/measurements", {"asn": "AS١٢٣"}, "asn: AS number"),
    ("/api/v1/aggregation", {"asn": "AS8449\n"}, "asn: AS number"),
    ("/api/v1/events", {"cc": "KZ\n"}, "cc: two letters"),
    ("/api/v1/measurements", {"input": "https://x/\x00"}, "input: 1-2048 characters, no NUL"),
    ("/api/v1/measurements", {"cursor": "eyJ4Ijo5fQ"}, "cursor: not a cursor"),
])
def test_other_parameters_out_of_range_are_400(
        collector: tuple[CollectorProcess, str], path: str, query: dict[str, str],
        reason: str) -> None:
    process, _ = collector
    status, _, body = request(process.base, f"{path}?{urllib.parse.urlencode(query)}")
    assert status == 400, body
    assert strict_json(body)["error"].startswith(reason)


# ------------------------------------------------------------------ bodies


@pytest.mark.parametrize(("literal", "reason"), [
    ("1e999999", "body: number 1e999999 is out of range"),
    ("-1e999999", "body: number -1e999999 is out of range"),
    ("1E400", "body: number 1E400 is out of range"),
    ("9223372036854775808", "body: number 9223372036854775808 is out of range"),
    ("-9223372036854775809", "body: number -9223372036854775809 is out of range"),
    ("1" + "0" * 5000, "body is not valid JSON: Exceeds the limit"),
    ("Infinity", "body is not valid JSON: Infinity is not JSON"),
    ("NaN", "body is not valid JSON: NaN is not JSON"),
])
def test_numbers_no_reader_can_hold_are_400_and_never_stored(
        collector: tuple[CollectorProcess, str], literal: str, reason: str) -> None:
    process, token = collector
    uid = f"number-{abs(hash(literal)) % 10**8:08d}"
    text = json.dumps(measurement(uid, test_keys={"x": "PLACEHOLDER"}))
    raw = text.replace('"PLACEHOLDER"', literal).encode()
    status, _, body = request(process.base, "/api/v1/measurements", raw, token=token)
    assert status == 400, body
    assert strict_json(body)["error"].startswith(reason)
    heartbeat = f'{{"sent_at": "2026-01-01T00:00:00Z", "queue_bytes": {literal}}}'.encode()
    status, _, body = request(process.base, "/api/v1/heartbeat", heartbeat, token=token)
    assert status == 400 and strict_json(body)["error"].startswith(reason)
    with sqlite3.connect(process.database) as db:
        assert db.execute("SELECT count(*) FROM measurements WHERE uid = ?",
                          (uid,)).fetchone() == (0,)


def test_the_largest_numbers_allowed_are_stored_and_served_as_json(
        collector: tuple[CollectorProcess, str]) -> None:
    process, token = collector
    keys = {"big": 2**63 - 1, "small": -2**63, "double": 1.7976931348623157e308,
            "analysis": {"verdict": "ok"}}
    status, _, body = request(process.base, "/api/v1/measurements",
                              measurement("numbers-edge-01", test_keys=keys), token=token)
    assert status == 200, body
    status, _, body = request(process.base, "/api/v1/measurements?full=true&limit=1000")
    served = {m["uid"]: m for m in strict_json(body)["measurements"]}
    assert served["numbers-edge-01"]["measurement"]["test_keys"] == keys


def test_the_stored_identity_is_the_tokens(collector: tuple[CollectorProcess, str]) -> None:
    process, token = collector
    spoofed = measurement("spoofed-id-01", probe_id="victim-probe",
                          annotations={"probe_id": "victim-probe", "platform": "linux"})
    status, _, body = request(process.base, "/api/v1/measurements", spoofed, token=token)
    assert status == 200, body
    with sqlite3.connect(process.database) as db:
        probe_id, stored = db.execute("SELECT probe_id, body FROM measurements WHERE uid = ?",
                                      ("spoofed-id-01",)).fetchone()
    stored = unpack(stored)
    document = json.loads(stored)
    assert probe_id == "honest-probe"
    assert document["annotations"] == {"probe_id": "honest-probe", "platform": "linux"}
    assert document["probe_id"] == "honest-probe"
    assert "victim-probe" not in stored
    # A heartbeat naming another probe is refused outright.
    status, _, body = request(process.base, "/api/v1/heartbeat",
                              {"probe_id": "victim-probe", "sent_at": "2026-01-01T00:00:00Z"},
                              token=token)
    assert status == 400 and strict_json(body)["error"] == "probe_id: does not match the token"
    for bad in ("a string", ["list"], 7):
        status, _, body = request(process.base, "/api/v1/measurements",
                                  measurement("spoofed-id-02", annotations=bad), token=token)
        assert status == 400
        assert strict_json(body)["rejected"][0]["reason"] == "annotations"


@pytest.mark.parametrize(("own", "spellings"), [(OWN_V4, V4_SPELLINGS),
                                                (OWN_V6, V6_SPELLINGS)], ids=["v4", "v6"])
def test_the_submitters_address_is_stored_in_no_spelling(
        collector: tuple[CollectorProcess, str], own: str, spellings: list[str]) -> None:
    process, token = collector
    uid = f"scrub-{'v4' if ':' not in own else 'v6'}-0001"
    texts = {f"s{i}": f"seen {s} here" for i, s in enumerate(spellings)}
    keys = {"analysis": {"verdict": "ok"}, "texts": texts, "strangers": STRANGERS,
            "failure": "unknown_failure: \x00" + spellings[-1], spellings[0]: "as a key"}
    proxy = {"X-Forwarded-For": f"192.0.2.1, {own}"}
    status, _, body = request(process.base, "/api/v1/measurements",
                              measurement(uid, input=f"https://{spellings[0]}/", test_keys=keys),
                              token=token, headers=proxy)
    assert status == 200, body
    heartbeat = {"sent_at": "2026-01-01T00:00:00Z", "queue_depth": 0, "texts": texts,
                 "strangers": STRANGERS}
    status, _, body = request(process.base, "/api/v1/heartbeat", heartbeat, token=token,
                              headers=proxy)
    assert status == 200, body
    assert strict_json(body)["observed_address"] == own  # told to the probe, not stored
    with sqlite3.connect(process.database) as db:
        (stored,) = db.execute("SELECT body FROM measurements WHERE uid = ?",
                               (uid,)).fetchone()
        (beat,) = db.execute("SELECT body FROM heartbeats ORDER BY rowid DESC "
                             "LIMIT 1").fetchone()
    stored = unpack(stored)
    for text in (stored, beat):
        document = json.loads(text)
        rest = text.lower()
        for stranger in STRANGERS:
            rest = rest.replace(stranger, "")
        for spelling in spellings:
            assert spelling.lower() not in rest, spelling
        scrubbed = document["texts"] if "texts" in document else \
            document["test_keys"]["texts"]
        assert all(v.startswith("seen ") and "[scrubbed]" in v for v in scrubbed.values())
        strangers = document.get("strangers") or document["test_keys"]["strangers"]
        assert strangers == STRANGERS


# ------------------------------------------------------------------ headers


@pytest.mark.parametrize("path", ["/", "/events/nope", "/api/v1/events", "/metrics",
                                  "/healthz", "/no/such/page", "/api/v1/events?since=x"])
def test_every_answer_carries_the_security_headers(
        collector: tuple[CollectorProcess, str], path: str) -> None:
    process, _ = collector
    status, headers, _ = request(process.base, path)
    assert status < 500
    assert "default-src 'none'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "script-src" not in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "no-referrer"


# ------------------------------------------------------------------ slow clients


async def slowloris(port: int, stop: asyncio.Event) -> tuple[float, bytes]:
    """One connection sending its headers a line every half second until the server hangs
    up; how long that took and what the server said."""
    # Taken before connecting, so the server's deadline (from its accept) cannot start earlier.
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: kuzot\r\n")
    answer = b""
    try:
        index = 0
        while not stop.is_set():
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 0.5)
            except TimeoutError:
                writer.write(f"X-Slow-{index}: {'x' * 20}\r\n".encode())
                index += 1
                continue
            if not chunk:
                break
            answer += chunk
    except ConnectionError:
        pass
    finally:
        writer.close()
    return time.monotonic() - started, answer


async def test_slow_clients_are_closed_in_bounded_time_while_others_are_served(
        collector: tuple[CollectorProcess, str]) -> None:
    process, _ = collector
    stop = asyncio.Event()
    attackers = [asyncio.create_task(slowloris(process.port, stop)) for _ in range(500)]
    # One that connects and sends nothing at all.
    silent_reader, silent_writer = await asyncio.open_connection("127.0.0.1", process.port)
    try:
        await asyncio.sleep(0.5)
        # Under the attack an ordinary client is served at once.
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        status, _, _ = await loop.run_in_executor(None, request, process.base, "/healthz")
        assert status == 200 and time.monotonic() - started < HEADER_TIMEOUT
        results = await asyncio.wait_for(asyncio.gather(*attackers), HEADER_TIMEOUT + 20)
        silent = await asyncio.wait_for(silent_reader.read(), HEADER_TIMEOUT + 5)
    finally:
        stop.set()
        silent_writer.close()
    durations = sorted(d for d, _ in results)
    assert all(a.startswith(b"HTTP/1.1 408 ") for _, a in results)
    assert silent.startswith(b"HTTP/1.1 408 ")
    # Closed after the deadline, not before, and not much later.
    assert durations[0] >= HEADER_TIMEOUT - 0.05
    assert durations[-1] < HEADER_TIMEOUT + 10, durations[-5:]


async def test_the_deadline_covers_each_request_of_a_kept_alive_connection(
        collector: tuple[CollectorProcess, str]) -> None:
    process, _ = collector
    reader, writer = await asyncio.open_connection("127.0.0.1", process.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: kuzot\r\n\r\n")
        first = await asyncio.wait_for(reader.readuntil(b'{"ok": true}'), 10)
        assert first.startswith(b"HTTP/1.1 200 ")
        # Idle for longer than the deadline is allowed (keep-alive); a slow head is not.
        await asyncio.sleep(HEADER_TIMEOUT + 0.5)
        writer.write(b"GET /healthz HTTP/1.1\r\n")
        started = time.monotonic()
        answer = b""
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(4096), 0.5)
            except TimeoutError:
                writer.write(b"X-Slow: 1\r\n")
                continue
            if not chunk:
                break
            answer += chunk
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert HEADER_TIMEOUT - 0.1 <= time.monotonic() - started < HEADER_TIMEOUT + 5


async def test_a_slow_body_after_a_prompt_head_is_not_cut_off(
        collector: tuple[CollectorProcess, str]) -> None:
    """A probe on a throttled link uploading a batch: the deadline is for heads only."""
    process, token = collector
    body = json.dumps(measurement("slow-body-0001")).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", process.port)
    try:
        writer.write(b"POST /api/v1/measurements HTTP/1.1\r\nHost: kuzot\r\n"
                     b"Content-Type: application/json\r\nConnection: close\r\n"
                     + f"Authorization: Bearer {token}\r\n".encode()
                     + f"Content-Length: {len(body)}\r\n\r\n".encode())
        pieces = [body[i:i + len(body) // 6 + 1] for i in range(0, len(body), len(body) // 6 + 1)]
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep((HEADER_TIMEOUT * 2) / len(pieces))
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]


async def test_pipelined_requests_are_all_answered(
        collector: tuple[CollectorProcess, str]) -> None:
    """The deadline guard passes bytes through untouched: three requests in one write get
    three answers, and the connection then stays open as keep-alive allows."""
    process, _ = collector
    reader, writer = await asyncio.open_connection("127.0.0.1", process.port)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: kuzot\r\n\r\n" * 3)
        answers = b""
        while answers.count(b'{"ok": true}') < 3:
            chunk = await asyncio.wait_for(reader.read(65536), 10)
            assert chunk, answers
            answers += chunk
    finally:
        writer.close()
    assert answers.count(b"HTTP/1.1 200 OK") == 3


UNPARSABLE_REQUESTS = {
    "length beside chunked": b"POST /api/v1/heartbeat HTTP/1.1\r\nHost: kuzot\r\n"
                             b"Transfer-Encoding: x\r\nContent-Length: 6\r\n\r\nabcdef",
    "header line without a colon": b"GET /healthz HTTP/1.1\r\nHost: kuzot\r\nnocolon\r\n\r\n",
    "a method with a space": b"GE T /healthz HTTP/1.1\r\nHost: kuzot\r\n\r\n",
    "bad chunk size": b"POST /api/v1/heartbeat HTTP/1.1\r\nHost: kuzot\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "two lengths": b"POST /api/v1/heartbeat HTTP/1.1\r\nHost: kuzot\r\n"
                   b"Content-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
}


@pytest.mark.parametrize("name", sorted(UNPARSABLE_REQUESTS))
async def test_requests_the_parser_rejects_get_a_json_400(
        collector: tuple[CollectorProcess, str], name: str) -> None:
    """aiohttp answers these before any handler runs; the answer is still this API's JSON
    error object with the security headers, and the collector stays up."""
    process, _ = collector
    reader, writer = await asyncio.open_connection("127.0.0.1", process.port)
    try:
        writer.write(UNPARSABLE_REQUESTS[name])
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    # HTTP/1.0 when even the request line could not be read.
    assert head.split(b" ", 2)[1] == b"400", answer[:300]
    headers = {line.split(b":", 1)[0].strip().lower(): line.split(b":", 1)[1].strip()
               for line in head.split(b"\r\n")[1:]}
    assert headers[b"content-type"].startswith(b"application/json"), head
    assert headers[b"x-content-type-options"] == b"nosniff"
    error = json.loads(body)["error"]
    assert isinstance(error, str) and error
    status, _, _ = request(process.base, "/healthz")
    assert status == 200
