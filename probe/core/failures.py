"""The closed failure vocabulary and the one classifier that maps exceptions onto it.

Every network error is classified exactly once, at the ``probe.netx`` boundary, into OONI's
failure strings (see OONI df-007) so that measurements from Kuzot can be read with OONI tooling.
Nothing outside ``netx`` string-matches exception messages. Anything we cannot name becomes
``unknown_failure: <message>`` with IP addresses scrubbed, so a volunteer's address never leaks
through an error text.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from typing import Final

from probe.core.scrub import scrub_ips

DNS_NXDOMAIN: Final = "dns_nxdomain_error"
DNS_NO_ANSWER: Final = "dns_no_answer"
DNS_SERVFAIL: Final = "dns_servfail_error"
DNS_REFUSED: Final = "dns_refused_error"
DNS_BOGON: Final = "dns_bogon_error"
# getaddrinfo's EAI_AGAIN: the resolver answered SERVFAIL or did not answer in time; the
# system resolver does not say which, so neither do we (OONI uses the same string).
DNS_TEMPORARY: Final = "dns_temporary_failure"
TIMEOUT: Final = "generic_timeout_error"
CONNECTION_REFUSED: Final = "connection_refused"
CONNECTION_RESET: Final = "connection_reset"
EOF_ERROR: Final = "eof_error"
HOST_UNREACHABLE: Final = "host_unreachable"
NETWORK_UNREACHABLE: Final = "network_unreachable"
SSL_INVALID_HOSTNAME: Final = "ssl_invalid_hostname"
SSL_UNKNOWN_AUTHORITY: Final = "ssl_unknown_authority"
SSL_INVALID_CERTIFICATE: Final = "ssl_invalid_certificate"
SSL_FAILED_HANDSHAKE: Final = "ssl_failed_handshake"
PERMISSION_DENIED: Final = "permission_denied"
INTERRUPTED: Final = "interrupted"
# A redirect whose Location has no host (``http://``), OONI probe#2628.
HTTP_INVALID_REDIRECT: Final = "http_invalid_redirect_location_host"
UNKNOWN_PREFIX: Final = "unknown_failure: "
# OONI's exact string for a chain longer than ten redirects (QA cases 38 and 39).
TOO_MANY_REDIRECTS: Final = UNKNOWN_PREFIX + "stopped after too many redirects"
# Kuzot's own: OONI has no string for these. A Location that is not a URL at all (bad IPv6
# literal, port out of range, unparsable); its host, when it has one, is the OONI failure above.
HTTP_INVALID_REDIRECT_URL: Final = "http_invalid_redirect_location"
# A redirect from a public site into loopback, link-local or private space (including names
# that resolve there): not followed, so the volunteer's own network never lands in a
# measurement (see "Redirect policy" in the README).
HTTP_REDIRECT_PRIVATE: Final = "http_redirect_to_private_address"
# Response limits of probe.netx.http (each is explained at ``Limits``).
HTTP_HEADERS_TOO_LARGE: Final = "http_response_headers_too_large"
HTTP_TOO_MANY_HEADERS: Final = "http_too_many_response_headers"
HTTP_HEADER_LINE_TOO_LONG: Final = "http_response_header_line_too_long"

KNOWN_FAILURES: Final = frozenset(
    {
        DNS_NXDOMAIN, DNS_NO_ANSWER, DNS_SERVFAIL, DNS_REFUSED, DNS_BOGON, DNS_TEMPORARY,
        TIMEOUT, CONNECTION_REFUSED, CONNECTION_RESET, EOF_ERROR, HOST_UNREACHABLE,
        NETWORK_UNREACHABLE, SSL_INVALID_HOSTNAME, SSL_UNKNOWN_AUTHORITY,
        SSL_INVALID_CERTIFICATE, SSL_FAILED_HANDSHAKE, PERMISSION_DENIED, INTERRUPTED,
        HTTP_INVALID_REDIRECT, HTTP_INVALID_REDIRECT_URL, HTTP_REDIRECT_PRIVATE,
        HTTP_HEADERS_TOO_LARGE, HTTP_TOO_MANY_HEADERS, HTTP_HEADER_LINE_TOO_LONG,
    }
)

# Operations: where a failure happened, kept apart from what it was.
OP_RESOLVE: Final = "resolve"
OP_DNS_ROUND_TRIP: Final = "dns_round_trip"
OP_CONNECT: Final = "connect"
OP_TLS_HANDSHAKE: Final = "tls_handshake"
OP_HTTP_ROUND_TRIP: Final = "http_round_trip"
OP_READ: Final = "read"
OP_TOP_LEVEL: Final = "top_level"

OPERATIONS: Final = frozenset(
    {OP_RESOLVE, OP_DNS_ROUND_TRIP, OP_CONNECT, OP_TLS_HANDSHAKE, OP_HTTP_ROUND_TRIP, OP_READ,
     OP_TOP_LEVEL}
)

CERTIFICATE_FAILURES: Final = frozenset(
    {SSL_UNKNOWN_AUTHORITY, SSL_INVALID_CERTIFICATE, SSL_INVALID_HOSTNAME}
)

_ERRNO: Final = {
    errno.ECONNREFUSED: CONNECTION_REFUSED,
    errno.ECONNRESET: CONNECTION_RESET,
    errno.EPIPE: CONNECTION_RESET,
    errno.ETIMEDOUT: TIMEOUT,
    errno.EHOSTUNREACH: HOST_UNREACHABLE,
    errno.ENETUNREACH: NETWORK_UNREACHABLE,
    # No source address of that family: a host with IPv6 switched off. For the analysis this
    # is the same fact as a missing route, not evidence of blocking.
    errno.EADDRNOTAVAIL: NETWORK_UNREACHABLE,
    errno.EACCES: PERMISSION_DENIED,
    errno.EPERM: PERMISSION_DENIED,
}

_GAI: Final = {
    socket.EAI_NONAME: DNS_NXDOMAIN,
    getattr(socket, "EAI_NODATA", -5): DNS_NO_ANSWER,
    socket.EAI_AGAIN: DNS_TEMPORARY,
    socket.EAI_FAIL: DNS_SERVFAIL,
}

_SSL_VERIFY: Final = {
    # OpenSSL X509_V_ERR_* codes; see x509_vfy.h.
    2: SSL_UNKNOWN_AUTHORITY,  # unable to get issuer certificate
    18: SSL_UNKNOWN_AUTHORITY,  # self-signed leaf
    19: SSL_UNKNOWN_AUTHORITY,  # self-signed certificate in chain
    20: SSL_UNKNOWN_AUTHORITY,  # unable to get local issuer certificate
    21: SSL_UNKNOWN_AUTHORITY,  # unable to verify the first certificate
    62: SSL_INVALID_HOSTNAME,  # hostname mismatch
}


def unknown(message: str) -> str:
    """An ``unknown_failure`` string with IP addresses scrubbed from the message."""
    return UNKNOWN_PREFIX + scrub_ips(message.strip() or "no message")


def classify(exc: BaseException) -> str:
    """Map an exception from a network operation to a failure string.

    Ordered as httpcore does it: exception type first, then errno, then a few well-known
    messages. The order matters: ``ssl.SSLCertVerificationError`` is an ``OSError`` too.
    Errors that aiohttp wraps (DoH, the control client) are unwrapped to their cause first.
    """
    import aiohttp
    import dns.exception
    import dns.resolver

    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return classify(exc.certificate_error)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return classify(exc.os_error)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return EOF_ERROR
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return TIMEOUT
    if isinstance(exc, asyncio.CancelledError):
        return INTERRUPTED
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | dns.exception.Timeout):
        return TIMEOUT
    if isinstance(exc, dns.resolver.NXDOMAIN):
        return DNS_NXDOMAIN
    if isinstance(exc, dns.resolver.NoAnswer):
        return DNS_NO_ANSWER
    if isinstance(exc, dns.resolver.NoNameservers):
        return DNS_SERVFAIL
    if isinstance(exc, ssl.SSLCertVerificationError):
        code = getattr(exc, "verify_code", None)
        if code in _SSL_VERIFY:
            return _SSL_VERIFY[code]
        message = str(getattr(exc, "verify_message", "") or exc).lower()
        if "hostname" in message or "ip address mismatch" in message:
            return SSL_INVALID_HOSTNAME
        if "issuer" in message or "self-signed" in message or "self signed" in message:
            return SSL_UNKNOWN_AUTHORITY
        return SSL_INVALID_CERTIFICATE
    if isinstance(exc, ssl.SSLEOFError | EOFError | asyncio.IncompleteReadError):
        return EOF_ERROR
    if isinstance(exc, ssl.SSLZeroReturnError):
        return EOF_ERROR
    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or "").upper()
        if "UNEXPECTED_EOF" in reason or "EOF" in str(exc).upper():
            return EOF_ERROR
        if "RESET" in str(exc).upper():
            return CONNECTION_RESET
        return SSL_FAILED_HANDSHAKE
    if isinstance(exc, socket.gaierror):
        return _GAI.get(exc.errno, unknown(str(exc)))
    if isinstance(exc, ConnectionRefusedError):
        return CONNECTION_REFUSED
    if type(exc) is ConnectionResetError and exc.errno is None:
        # asyncio's TLS layer reports a peer that closed during the handshake as a bare
        # ConnectionResetError() with no errno; a real RST always carries ECONNRESET.
        return EOF_ERROR
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return CONNECTION_RESET
    if isinstance(exc, OSError) and exc.errno in _ERRNO:
        return _ERRNO[exc.errno]
    text = str(exc)
    lowered = text.lower()
    if "connection reset" in lowered:
        return CONNECTION_RESET
    if "server disconnected" in lowered or "connection closed" in lowered:
        return EOF_ERROR
    return unknown(text or type(exc).__name__)


def is_failure_string(value: str) -> bool:
    """True for a member of the vocabulary or an ``unknown_failure: ...`` string."""
    return value in KNOWN_FAILURES or value.startswith(UNKNOWN_PREFIX)


def describe(exc: BaseException, operation: str) -> dict[str, str]:
    """``{"failure": ..., "operation": ...}``: what failed and where, as two separate fields."""
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}")
    return {"failure": classify(exc), "operation": operation}
