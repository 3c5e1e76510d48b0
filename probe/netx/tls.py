"""TLS handshake with an explicit SNI over an established TCP stream (OONI df-006).

The record keeps what an analyst needs to tell interception from an ordinary bad certificate:
version, cipher, ALPN and the peer's certificate chain, both in OONI's form
(``peer_certificates``: base64 DER) and described (``x_certificates``: subject, issuer,
validity, SHA-256 fingerprint). When verification fails, the handshake is over and Python's
``ssl`` module has thrown the chain away, so we connect once more without verification purely
to read the chain the network presented (``x_chain_source: "unverified_rehandshake"``); a
middlebox's issuer is the strongest evidence of interception we can collect. The handshake is
still recorded as failed. Python before 3.13 exposes only the leaf certificate; from 3.13 on
the whole chain is recorded. ``no_tls_verify`` and ``network`` are OONI's keys (whether the
handshake skipped verification; the transport); ``x_operation`` says where a failure happened.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import ssl
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from probe.core import failures
from probe.netx import tcp
from probe.netx.trace import Trace

Record = dict[str, Any]


@functools.lru_cache(maxsize=16)
def client_context(ca_file: str | None = None, verify: bool = True) -> ssl.SSLContext:
    """A client context trusting the system roots plus ``ca_file`` (PEM), if given.

    Cached: loading the system trust store costs milliseconds of CPU, more than the
    handshake itself, and a context is safe to share between connections.
    """
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


def _name(name: x509.Name) -> str:
    common = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    organisation = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    if common:
        return str(common[0].value)
    if organisation:
        return str(organisation[0].value)
    return name.rfc4514_string()


def describe_certificate(der: bytes) -> Record:
    """Subject, issuer, validity and fingerprint of a DER certificate."""
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = [str(n) for n in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = []
    return {
        "subject": _name(cert.subject),
        "issuer": _name(cert.issuer),
        "issuer_dn": cert.issuer.rfc4514_string(),
        "dns_names": names,
        "not_before": cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "not_after": cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sha256": hashlib.sha256(der).hexdigest(),
    }


def _der_chain(ssl_object: Any) -> list[bytes]:
    """The peer's chain as DER, leaf first: whole on Python 3.13+, else the leaf only."""
    getter = getattr(ssl_object, "get_unverified_chain", None)
    if getter is not None:
        chain = getter() or []
        out = []
        for item in chain:
            if isinstance(item, bytes):
                out.append(item)
            else:
                out.append(item.public_bytes(getattr(ssl, "ENCODING_DER", 2)))
        if out:
            return out
    leaf = ssl_object.getpeercert(binary_form=True)
    return [leaf] if leaf else []


def _record_chain(record: Record, chain: list[bytes]) -> None:
    record["peer_certificates"] = [
        {"data": base64.b64encode(der).decode("ascii"), "format": "base64"} for der in chain
    ]
    described = []
    for der in chain:
        try:
            described.append(describe_certificate(der))
        except ValueError:
            described.append({"sha256": hashlib.sha256(der).hexdigest(), "error": "unparsable"})
    record["x_certificates"] = described


async def handshake(
    stream: tcp.Stream,
    sni: str,
    trace: Trace,
    timeout: float,
    context: ssl.SSLContext,
    presented_on_failure: bool = True,
) -> tuple[Record, tcp.Stream | None]:
    """Upgrade ``stream`` to TLS with ``sni``; returns the ``tls_handshakes`` record.

    On a certificate failure and with ``presented_on_failure``, the chain the server presented
    is read over a second, unverified connection to the same address.
    """
    reader, writer = stream
    peer = writer.get_extra_info("peername") or ("", 0)
    ip, port = str(peer[0]), int(peer[1])
    local = writer.get_extra_info("sockname")
    record: Record = {
        "network": "tcp",
        "address": tcp.endpoint(ip, port),
        "server_name": sni,
        "no_tls_verify": context.verify_mode == ssl.CERT_NONE,
        "failure": None,
        "x_operation": None,
        "tls_version": None,
        "cipher_suite": None,
        "negotiated_protocol": None,
        "peer_certificates": [],
        "x_certificates": [],
        "x_chain_source": None,
        "t0": trace.now(),
    }
    try:
        async with asyncio.timeout(timeout):
            await writer.start_tls(context, server_hostname=sni)
    except Exception as exc:
        record["failure"] = failures.classify(exc)
        record["x_operation"] = failures.OP_TLS_HANDSHAKE
        record["t"] = trace.now()
        if presented_on_failure and record["failure"] in failures.CERTIFICATE_FAILURES:
            # Same local address as the first connection: same uplink, same middlebox.
            presented = await presented_chain(ip, port, sni, timeout,
                                              str(local[0]) if local else None)
            if presented:
                _record_chain(record, presented)
                record["x_chain_source"] = "unverified_rehandshake"
        return record, None
    record["t"] = trace.now()
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is not None:
        record["tls_version"] = ssl_object.version()
        cipher = ssl_object.cipher()
        record["cipher_suite"] = cipher[0] if cipher else None
        record["negotiated_protocol"] = ssl_object.selected_alpn_protocol()
        _record_chain(record, _der_chain(ssl_object))
        record["x_chain_source"] = "handshake"
    return record, (reader, writer)


async def presented_chain(
    ip: str, port: int, sni: str, timeout: float, source: str | None = None
) -> list[bytes]:
    """The chain (DER, leaf first) a server presents for ``sni``, without verifying it."""
    trace = Trace()
    _, stream = await tcp.connect(ip, port, trace, timeout, source)
    if stream is None:
        return []
    reader, writer = stream
    try:
        async with asyncio.timeout(timeout):
            await writer.start_tls(client_context(verify=False), server_hostname=sni)
        ssl_object = writer.get_extra_info("ssl_object")
        return _der_chain(ssl_object) if ssl_object is not None else []
    except Exception:  # the first handshake already recorded the failure that matters
        return []
    finally:
        await tcp.close((reader, writer))
