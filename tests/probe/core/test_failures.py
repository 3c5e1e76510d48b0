"""The closed failure vocabulary: each exception maps to exactly one string, in one place."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import dns.exception
import pytest

from probe.core import failures
from probe.netx import http as netx_http
from probe.netx import tcp
from probe.netx.trace import Trace
from tests.helpers.ports import free_port
from tests.helpers.servers import tcp_behaviour


def _verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, message)
    exc.verify_code = code
    exc.verify_message = message
    return exc


@pytest.mark.parametrize(("exc", "expected"), [
    (TimeoutError(), failures.TIMEOUT),
    (dns.exception.Timeout(), failures.TIMEOUT),
    (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), failures.CONNECTION_REFUSED),
    (ConnectionResetError(errno.ECONNRESET, "reset by peer"), failures.CONNECTION_RESET),
    (ConnectionResetError(), failures.EOF_ERROR),  # asyncio: peer closed during TLS handshake
    (BrokenPipeError(errno.EPIPE, "broken pipe"), failures.CONNECTION_RESET),
    (OSError(errno.ENETUNREACH, "unreachable"), failures.NETWORK_UNREACHABLE),
    (OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address"),
     failures.NETWORK_UNREACHABLE),
    (OSError(errno.EHOSTUNREACH, "no route"), failures.HOST_UNREACHABLE),
    (socket.gaierror(socket.EAI_NONAME, "unknown"), failures.DNS_NXDOMAIN),
    (socket.gaierror(socket.EAI_NODATA, "no address"), failures.DNS_NO_ANSWER),
    (socket.gaierror(socket.EAI_AGAIN, "try again"), failures.DNS_TEMPORARY),
    (_verify_error(10, "certificate has expired"), failures.SSL_INVALID_CERTIFICATE),
    (_verify_error(62, "Hostname mismatch"), failures.SSL_INVALID_HOSTNAME),
    (_verify_error(20, "unable to get local issuer certificate"),
     failures.SSL_UNKNOWN_AUTHORITY),
    (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), failures.EOF_ERROR),
    (asyncio.IncompleteReadError(b"", 10), failures.EOF_ERROR),
    (asyncio.CancelledError(), failures.INTERRUPTED),
])
def test_classify(exc: BaseException, expected: str) -> None:
    assert failures.classify(exc) == expected
    assert failures.is_failure_string(expected)


def test_unknown_failures_scrub_addresses() -> None:
    failure = failures.classify(RuntimeError("odd reply from 203.0.113.9 and 2001:db8::7"))
    assert failure == "unknown_failure: odd reply from [scrubbed] and [scrubbed]"


def test_describe_keeps_what_and_where_apart() -> None:
    described = failures.describe(ConnectionRefusedError(), failures.OP_CONNECT)
    assert described == {"failure": failures.CONNECTION_REFUSED, "operation": "connect"}
    with pytest.raises(ValueError):
        failures.describe(ConnectionRefusedError(), "somewhere")


async def test_connect_to_a_closed_port_is_refused_at_connect() -> None:
    port = free_port()
    record, stream = await tcp.connect("127.0.0.1", port, Trace(), 1.0)
    assert stream is None
    assert record["status"] == {"success": False, "failure": failures.CONNECTION_REFUSED,
                                "x_operation": failures.OP_CONNECT, "blocked": None}


async def test_a_body_cut_short_is_eof_while_reading() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly a part")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    trace = Trace()
    _, stream = await tcp.connect("127.0.0.1", port, trace, 1.0)
    assert stream is not None
    record = await netx_http.get(stream, f"http://x:{port}/", "x", "/", trace, 2.0)
    await tcp.close(stream)
    server.close()
    assert (record["failure"], record["x_operation"]) == (failures.EOF_ERROR, failures.OP_READ)


@pytest.mark.parametrize(("behaviour", "failure"), [
    ("reset", failures.CONNECTION_RESET), ("eof", failures.EOF_ERROR),
])
async def test_tls_after_the_client_hello(behaviour: str, failure: str) -> None:
    from probe.netx import tls

    async with tcp_behaviour(behaviour) as port:
        trace = Trace()
        _, stream = await tcp.connect("127.0.0.1", port, trace, 1.0)
        assert stream is not None
        record, tls_stream = await tls.handshake(stream, "www.example.com", trace, 1.0,
                                                 tls.client_context())
        await tcp.close(stream)
    assert tls_stream is None
    assert (record["failure"], record["x_operation"]) == (failure, failures.OP_TLS_HANDSHAKE)
    assert record["peer_certificates"] == []
