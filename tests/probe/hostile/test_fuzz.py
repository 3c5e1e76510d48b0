"""Hypothesis fuzzing of the HTTP response parsing and of Location handling.

The response parser runs over an in-memory stream (``asyncio.StreamReader`` fed the bytes, a
writer that only records), so thousands of responses cost no sockets. Whatever the bytes, ``get``
returns a record with either a response or a failure string, within its limits.
"""

from __future__ import annotations

import asyncio
import ipaddress
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from probe.core import failures
from probe.core.bogons import GLOBAL, LOOPBACK, PRIVATE, redirect_allowed
from probe.core.urls import MAX_LOCATION_LENGTH, redirect_target, split_url
from probe.netx import http
from probe.netx.trace import Trace


class _Writer:
    def __init__(self) -> None:
        self.sent = bytearray()

    def write(self, data: bytes) -> None:
        self.sent += data

    async def drain(self) -> None:
        return None

    def get_extra_info(self, name: str) -> Any:
        return ("192.0.2.1", 80) if name == "peername" else None


SMALL = http.Limits(header_bytes=4096, header_count=20, line_length=512, body_snapshot=1024,
                    recorded_headers=5, recorded_value_length=64, recorded_header_bytes=256,
                    location_length=128)


def _get(data: bytes, limits: http.Limits) -> dict[str, Any]:
    async def run() -> dict[str, Any]:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        return await http.get((reader, _Writer()), "http://example.org/",  # type: ignore[arg-type]
                              "example.org", "/", Trace(), 5.0,
                              body_limit=limits.body_snapshot, limits=limits)

    return asyncio.run(run())


def _check(record: dict[str, Any], limits: http.Limits) -> None:
    if record["response"] is None:
        assert record["failure"] is not None and failures.is_failure_string(record["failure"])
        assert len(record["failure"]) < 300
        return
    response = record["response"]
    assert 100 <= response["code"] <= 999
    assert response["x_body_length"] <= limits.body_snapshot
    assert len(response["headers_list"]) <= limits.recorded_headers + 1  # + Location
    for name, value in response["headers_list"]:
        cap = (limits.location_length + 1 if name.lower() == "location"
               else limits.recorded_value_length)
        assert len(value) <= cap


_token = st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126,
                                        exclude_characters=":"), min_size=1, max_size=12)
_header = st.tuples(_token, st.binary(max_size=80)).map(lambda t: t[0].encode() + b": " + t[1])
_status = st.one_of(
    st.sampled_from([b"HTTP/1.1 200 OK", b"HTTP/1.0 302 Found", b"HTTP/1.1 100 Continue",
                     b"HTTP/1.1 204", b"HTTP/2 200 OK", b"HTTP/1.1 99 X", b"garbage"]),
    st.binary(max_size=40))
_chunk_size = st.one_of(st.integers(0, 2 ** 70).map(lambda n: b"%x" % n),
                        st.binary(max_size=30))
_body = st.one_of(
    st.binary(max_size=3000),
    st.lists(st.tuples(_chunk_size, st.binary(max_size=200)), max_size=6).map(
        lambda chunks: b"".join(size + b"\r\n" + data + b"\r\n" for size, data in chunks)))
_framing = st.sampled_from([b"", b"Content-Length: 10\r\n", b"Content-Length: 99999999\r\n",
                            b"Content-Length: -1\r\n", b"Transfer-Encoding: chunked\r\n",
                            b"Transfer-Encoding: gzip, chunked\r\n"])
_eol = st.sampled_from([b"\r\n", b"\n"])


@st.composite
def responses(draw: st.DrawFn) -> bytes:
    eol = draw(_eol)
    headers = draw(st.lists(_header, max_size=30))
    return (draw(_status) + eol + b"".join(h + eol for h in headers) + draw(_framing)
            + eol + draw(_body))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(responses())
def test_any_structured_response_gives_a_record_within_limits(data: bytes) -> None:
    _check(_get(data, SMALL), SMALL)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=6000))
def test_any_bytes_give_a_record_within_limits(data: bytes) -> None:
    _check(_get(data, SMALL), SMALL)


def test_a_well_formed_response_is_recorded_whole() -> None:
    record = _get(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: b\r\n\r\nhello", SMALL)
    assert record["failure"] is None
    assert record["response"]["headers_list"] == [["Content-Length", "5"], ["X-A", "b"]]
    assert record["response"]["x_body_length"] == 5
    assert record["response"]["body_is_truncated"] is False


_bases = st.sampled_from(["http://example.org/a/b", "https://example.org:8443/",
                          "http://[2001:db8::1]/x"])
_locations = st.one_of(
    st.text(max_size=200),
    st.builds(lambda scheme, host, port, path: f"{scheme}://{host}:{port}{path}",
              st.sampled_from(["http", "https", "HTTP", "ftp", "javascript", ""]),
              st.one_of(st.text(max_size=30), st.just("[::1"), st.just("[::1]"),
                        st.just("example.org")),
              st.one_of(st.integers(-5, 200000).map(str), st.text(max_size=6)),
              st.text(max_size=30)))


@settings(max_examples=500, deadline=None)
@given(_bases, _locations)
def test_any_location_gives_a_url_or_a_failure(base: str, location: str) -> None:
    url, failure = redirect_target(base, location)
    if url is None:
        assert failure in (failures.HTTP_INVALID_REDIRECT, failures.HTTP_INVALID_REDIRECT_URL)
        return
    assert failure is None
    scheme, host, port, _path = split_url(url)
    assert scheme in ("http", "https") and host and 0 < port < 65536


def test_named_hostile_locations() -> None:
    base = "http://example.org/"
    assert redirect_target(base, "http://[::1/evil")[1] == failures.HTTP_INVALID_REDIRECT_URL
    assert redirect_target(base, "http://host:99999/")[1] == failures.HTTP_INVALID_REDIRECT_URL
    assert redirect_target(base, "ftp://host/")[1] == failures.HTTP_INVALID_REDIRECT
    assert redirect_target(base, "http://")[1] == failures.HTTP_INVALID_REDIRECT
    too_long = "http://example.org/" + "a" * MAX_LOCATION_LENGTH
    assert redirect_target(base, too_long)[1] == failures.HTTP_INVALID_REDIRECT_URL
    assert redirect_target(base, "/next?x=1") == ("http://example.org/next?x=1", None)


@settings(max_examples=500, deadline=None)
@given(st.ip_addresses())
def test_from_a_public_start_only_global_addresses_are_allowed(
        address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    ip = address
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    expected = ip.is_global and not ip.is_multicast
    assert redirect_allowed(str(address), frozenset({GLOBAL})) == expected
    assert redirect_allowed(str(address), frozenset({GLOBAL, LOOPBACK})) == (
        expected or ip.is_loopback)
    assert redirect_allowed(str(address), frozenset({PRIVATE, LOOPBACK, GLOBAL}))


def test_header_lines_are_counted_per_head_and_never_in_the_body() -> None:
    limits = http.Limits(header_count=10)
    many = b"".join(b"X-%d: v\r\n" % i for i in range(11))
    record = _get(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n" + many
                  + b"Content-Length: 0\r\n\r\n", limits)
    assert record["failure"] == failures.HTTP_TOO_MANY_HEADERS
    body = b"line\n" * 5000
    record = _get(b"HTTP/1.1 100 Continue\r\nA: b\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: %d"
                  b"\r\n\r\n" % len(body) + body, limits)
    assert record["failure"] is None and record["response"]["x_body_length"] == len(body)
    record = _get(b"HTTP/1.1 200 OK\n" + b"".join(b"X-%d: v\n" % i for i in range(10))
                  + b"\n" + body, limits)
    assert record["failure"] is None and record["response"]["x_body_length"] == len(body)
