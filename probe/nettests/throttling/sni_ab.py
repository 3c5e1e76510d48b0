"""Asks the collector where its SNI A/B endpoint listens and which certificate it presents.

The collector serves one fixed object over TLS on its own port and accepts any SNI
(``GET {base}/api/v1/sni-ab``). The probe then fetches that object twice from the collector's
address, once with the target's SNI and once with an innocuous one. The fingerprint lets the
analysis tell our server from an interceptor answering in its place.
"""

from __future__ import annotations

import json
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp

from probe.core import failures


@dataclass(frozen=True, slots=True)
class ABEndpoint:
    host: str
    port: int
    path: str
    certificate_sha256: str
    object_bytes: int


def parse_endpoint(base_url: str, data: object) -> ABEndpoint:
    """Validate the collector's answer; raises ValueError naming the bad field."""
    if not isinstance(data, dict):
        raise ValueError("answer is not a JSON object")
    port = data.get("port")
    if not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError("port: not a TCP port")
    sha = data.get("certificate_sha256")
    if not isinstance(sha, str) or len(sha) != 64:
        raise ValueError("certificate_sha256: not a SHA-256 hex digest")
    path = data.get("path")
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError("path: not an absolute path")
    size = data.get("object_bytes")
    if not isinstance(size, int) or size <= 0:
        raise ValueError("object_bytes: not a positive integer")
    host = data.get("host") or urlsplit(base_url).hostname
    if not isinstance(host, str) or not host:
        raise ValueError("host: missing")
    return ABEndpoint(host, port, path, sha.lower(), size)


async def fetch_endpoint(
    base_url: str, timeout: float = 10.0, ca_file: str | None = None
) -> tuple[ABEndpoint | None, str | None]:
    """Returns (endpoint, None) or (None, failure string)."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    url = base_url.rstrip("/") + "/api/v1/sni-ab"
    try:
        async with aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=timeout),
            connector=aiohttp.TCPConnector(ssl=context),
        ) as session:
            async with session.get(url) as response:
                if response.status != 200:
                    return None, failures.unknown(f"sni-ab endpoint answered HTTP "
                                                  f"{response.status}")
                data = await response.json()
        return parse_endpoint(base_url, data), None
    except (aiohttp.ContentTypeError, json.JSONDecodeError):
        return None, failures.unknown("sni-ab endpoint answered with invalid JSON")
    except ValueError as exc:
        return None, failures.unknown(f"sni-ab endpoint answer: {exc}")
    except Exception as exc:
        return None, failures.classify(exc)
