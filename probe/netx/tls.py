"""TLS handshake with an explicit SNI over an established TCP stream (OONI df-006).

The record keeps what an analyst needs to tell interception from an ordinary bad certificate:
version, cipher, ALPN and, for the peer's leaf certificate, subject, issuer, validity and
SHA-256 fingerprint. When verification fails we reconnect once without verification purely to
read the certificate the network presented (a MITM box's issuer is the strongest evidence of
interception we can collect), and mark the handshake as failed all the same.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import ssl
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from probe import failures
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


async def handshake(
    stream: tcp.Stream,
    sni: str,
    trace: Trace,
    timeout: float,
    context: ssl.SSLContext,
) -> tuple[Record, tcp.Stream | None]:
    """Upgrade ``stream`` to TLS with ``sni``; returns the ``tls_handshakes`` record."""
    reader, writer = stream
    peer = writer.get_extra_info("peername") or ("", 0)
    record: Record = {
        "address": tcp.endpoint(str(peer[0]), int(peer[1])),
        "server_name": sni,
        "failure": None,
        "tls_version": None,
        "cipher_suite": None,
        "negotiated_protocol": None,
        "peer_certificates": [],
        "t0": trace.now(),
    }
    try:
        async with asyncio.timeout(timeout):
            await writer.start_tls(context, server_hostname=sni)
    except Exception as exc:
        record["failure"] = failures.classify(exc)
        record["t"] = trace.now()
        return record, None
    record["t"] = trace.now()
    ssl_object = writer.get_extra_info("ssl_object")
    if ssl_object is not None:
        record["tls_version"] = ssl_object.version()
        cipher = ssl_object.cipher()
        record["cipher_suite"] = cipher[0] if cipher else None
        record["negotiated_protocol"] = ssl_object.selected_alpn_protocol()
        der = ssl_object.getpeercert(binary_form=True)
        if der:
            record["peer_certificates"] = [describe_certificate(der)]
    return record, (reader, writer)


async def fetch_presented_certificate(
    ip: str, port: int, sni: str, timeout: float
) -> Record | None:
    """Read the leaf certificate a server presents, without verifying it.

    Used only after a verification failure, to record who issued the certificate we were shown.
    """
    trace = Trace()
    _, stream = await tcp.connect(ip, port, trace, timeout)
    if stream is None:
        return None
    try:
        record, tls_stream = await handshake(
            stream, sni, trace, timeout, client_context(verify=False)
        )
        if tls_stream is None:
            return None
        certificates = record["peer_certificates"]
        return certificates[0] if certificates else None
    finally:
        await tcp.close(stream)
