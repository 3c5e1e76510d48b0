"""Failure classification (the closed vocabulary) and IP scrubbing, on tables."""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl

import dns.exception
import dns.resolver
import pytest

from probe import failures
from probe.scrub import SCRUBBED, scrub_ips, scrub_value


def cert_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, message)
    exc.verify_code = code
    exc.verify_message = message
    return exc


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError(), failures.TIMEOUT),
        (dns.exception.Timeout(), failures.TIMEOUT),
        (dns.resolver.NXDOMAIN(), failures.DNS_NXDOMAIN),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), failures.CONNECTION_REFUSED),
        (ConnectionResetError(errno.ECONNRESET, "reset"), failures.CONNECTION_RESET),
        (OSError(errno.EHOSTUNREACH, "no route"), failures.HOST_UNREACHABLE),
        (OSError(errno.ENETUNREACH, "unreachable"), failures.NETWORK_UNREACHABLE),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
         failures.DNS_NXDOMAIN),
        (cert_error(20, "unable to get local issuer certificate"),
         failures.SSL_UNKNOWN_AUTHORITY),
        (cert_error(62, "Hostname mismatch"), failures.SSL_INVALID_HOSTNAME),
        (cert_error(10, "certificate has expired"), failures.SSL_INVALID_CERTIFICATE),
        (ssl.SSLEOFError(8, "EOF occurred in violation of protocol"), failures.EOF_ERROR),
        (asyncio.IncompleteReadError(b"", 10), failures.EOF_ERROR),
        (asyncio.CancelledError(), failures.INTERRUPTED),
    ],
)
def test_classify(exc: BaseException, expected: str) -> None:
    assert failures.classify(exc) == expected


def test_unknown_failure_scrubs_addresses() -> None:
    text = failures.classify(RuntimeError("weird thing from 203.0.113.9 and 2001:db8::5"))
    assert text == f"unknown_failure: weird thing from {SCRUBBED} and {SCRUBBED}"
    assert failures.is_failure_string(text)
    assert not failures.is_failure_string("something_else")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("connect 10.1.2.3:443 failed", f"connect {SCRUBBED}:443 failed"),
        ("v6 [2a02:6b8::2:242]:443", f"v6 [{SCRUBBED}]:443"),
        ("version 1.2.3 is not an address", "version 1.2.3 is not an address"),
        ("time 12:30:45 stays", "time 12:30:45 stays"),
        ("999.1.1.1 is not valid", "999.1.1.1 is not valid"),
    ],
)
def test_scrub_ips(text: str, expected: str) -> None:
    assert scrub_ips(text) == expected


def test_scrub_value_replaces_the_probe_address_everywhere() -> None:
    value = {"a": ["seen 85.113.1.2 here", {"b": "85.113.1.2"}], "n": 3}
    assert scrub_value(value, {"85.113.1.2"}) == {
        "a": [f"seen {SCRUBBED} here", {"b": SCRUBBED}], "n": 3}
