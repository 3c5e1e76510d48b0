"""The SNI A/B endpoint: one fixed object over TLS, served for any SNI, on its own port.

Why: to prove SNI-based throttling the probe fetches the same bytes from the same server twice,
once naming the target in the TLS ClientHello and once naming something innocuous (Wehe's
record-and-replay idea, and the future work of OONI dd-007). Only the SNI differs, so a censor's
SNI policer is the only thing that can make the two transfers differ. The listener therefore
has its own certificate (generated at start unless configured), never selects a certificate by
name, and answers every path with the same object.

``GET /api/v1/sni-ab`` on the main listener tells probes the port, the path, the object's size
and the certificate's SHA-256, so the probe can tell our server from an interceptor.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import socket
import ssl
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from collector.keys import config_key
from probe.core.typed_config import checked, is_host_port, positive

OBJECT_PATH = "/kuzot-sni-ab.bin"
_SEED = 0x6B757A6F74  # fixed, so every collector serves the same bytes for a given size


def _listen(value: str | None) -> str | None:
    """HOST:PORT, where port 0 asks the system for a free port (reported by the info route)."""
    if value is None or value.endswith(":0") and not is_host_port(value[:-1] + "1"):
        return None
    return is_host_port(value)


@dataclass(frozen=True, slots=True)
class SniAB:
    """``listen`` HOST:PORT enables the endpoint (port 0 picks a free one); ``public_host`` is
    the address probes should dial when it differs from the collector URL's host."""

    listen: str | None = checked(None, _listen)
    public_host: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    object_bytes: int = checked(4 * 1024 * 1024, positive)

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("sni_ab: cert_file and key_file go together")


@dataclass(frozen=True, slots=True)
class Running:
    port: int
    certificate_sha256: str
    object_bytes: int
    public_host: str | None


running_key = web.AppKey("sni_ab_running", Running)


def fixed_object(size: int) -> bytes:
    """Deterministic incompressible bytes, so both A/B transfers carry identical content."""
    return random.Random(_SEED).randbytes(size)


def self_signed() -> tuple[bytes, bytes]:
    """A fresh P-256 key and a self-signed certificate for it, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kuzot SNI A/B endpoint")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("kuzot-sni-ab.invalid")]),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def server_context(config: SniAB) -> tuple[ssl.SSLContext, str]:
    """The TLS context (one certificate for every SNI) and that certificate's SHA-256."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    if config.cert_file and config.key_file:
        cert_pem = Path(config.cert_file).read_bytes()
        context.load_cert_chain(config.cert_file, config.key_file)
    else:
        cert_pem, key_pem = self_signed()
        with tempfile.TemporaryDirectory() as folder:
            cert_path, key_path = Path(folder) / "cert.pem", Path(folder) / "key.pem"
            cert_path.write_bytes(cert_pem)
            key_path.touch(mode=0o600)
            key_path.write_bytes(key_pem)
            context.load_cert_chain(str(cert_path), str(key_path))
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return context, hashlib.sha256(der).hexdigest()


def object_app(body: bytes) -> web.Application:
    """Every path answers the object; ``?bytes=N`` answers its first N bytes, so a probe
    pays for exactly the bytes it measures (the path is inside TLS: the censor sees only
    the SNI)."""
    view = memoryview(body)

    async def serve(request: web.Request) -> web.Response:
        size = len(body)
        if "bytes" in request.query:
            text = request.query["bytes"]
            if not text.isdigit() or not 0 < int(text) <= len(body):
                raise web.HTTPBadRequest(text=f"bytes: an integer in 1..{len(body)}")
            size = int(text)
        return web.Response(body=view[:size], content_type="application/octet-stream",
                            headers={"Cache-Control": "no-store"})

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    return app


async def sni_ab_context(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: run the TLS listener beside the main one when ``sni_ab.listen`` is set."""
    config = app[config_key].sni_ab
    if config.listen is None:
        yield
        return
    context, sha256 = server_context(config)
    host, _, port = config.listen.rpartition(":")
    runner = web.AppRunner(object_app(fixed_object(config.object_bytes)), access_log=None)
    await runner.setup()
    try:
        sock = _bound_socket(host.strip("[]"), int(port))
        site = web.SockSite(runner, sock, ssl_context=context)
        await site.start()
        bound = int(sock.getsockname()[1])
        app[running_key] = Running(bound, sha256, config.object_bytes, config.public_host)
        yield
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()


def _bound_socket(host: str, port: int) -> socket.socket:
    """A listening-ready socket bound here, so the real port is known even for port 0."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


async def describe(request: web.Request) -> web.Response:
    """GET /api/v1/sni-ab: where the A/B endpoint listens and what it serves."""
    running = request.app.get(running_key)
    if running is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "sni-ab endpoint disabled"}),
                               content_type="application/json")
    return web.json_response({"port": running.port, "path": OBJECT_PATH,
                              "object_bytes": running.object_bytes,
                              "certificate_sha256": running.certificate_sha256,
                              "host": running.public_host})

