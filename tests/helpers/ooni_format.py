"""Judging a measurement by OONI's own loader and by the keys OONI itself writes.

Two checks, both from references nobody on this project wrote:

* ``load`` hands the measurement to ``oonidata`` (OONI's Python loader, from PyPI): it builds
  OONI's dataclasses, converting each typed field, and raises on what OONI could not read (a
  name where OONI has an integer, a missing required key, a string where it wants an object).
* ``problems`` lists every key, inside an object OONI defines, that is neither a field of
  OONI's model, nor a key OONI's own measurements carry there (the vendored QA corpus), nor
  prefixed ``x_`` (OONI's data format reserves that prefix for extensions); and the types of
  the keys OONI's consumers read beyond the loader (``rcode`` an integer, ``body`` text or
  ``{"format": "base64", "data"}``, ``no_tls_verify`` a boolean, ``answers[].asn`` an integer).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from functools import cache
from pathlib import Path
from typing import Any

import dns.rcode
from oonidata import dataformat

from probe.core import wire

CORPUS = Path(__file__).resolve().parent.parent / "testdata" / "ooni_qa"

# Where each OONI object sits in a web_connectivity measurement, and OONI's model of it.
MODELS: dict[str, Any] = {
    "": dataformat.WebConnectivity,
    "test_keys": dataformat.WebConnectivityTestKeys,
    "test_keys.queries[]": dataformat.DNSQuery,
    "test_keys.queries[].answers[]": dataformat.DNSAnswer,
    "test_keys.tcp_connect[]": dataformat.TCPConnect,
    "test_keys.tcp_connect[].status": dataformat.TCPConnectStatus,
    "test_keys.tls_handshakes[]": dataformat.TLSHandshake,
    "test_keys.requests[]": dataformat.HTTPTransaction,
    "test_keys.requests[].request": dataformat.HTTPRequest,
    "test_keys.requests[].response": dataformat.HTTPResponse,
    "test_keys.network_events[]": dataformat.NetworkEvent,
    "test_keys.control": dataformat.WebConnectivityControl,
    "test_keys.control.dns": dataformat.WebConnectivityControlDNS,
    "test_keys.control.http_request": dataformat.WebConnectivityControlHTTPRequest,
}
# Kuzot's own object at the top of test_keys (design notes, measurement format).
OURS = {"test_keys": {"analysis"}}


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*/*.json"))


def read(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        value = json.load(handle)
    assert isinstance(value, dict)
    return value


def load(measurement: dict[str, Any]) -> Any:
    """OONI's model of ``measurement``; AssertionError (short) when OONI cannot read it."""
    try:
        return dataformat.load_measurement(measurement)
    except Exception as exc:  # mashumaro raises several types; each means "rejected"
        message = str(exc)
        raise AssertionError(f"oonidata rejects the measurement: {type(exc).__name__}: "
                             f"{message[:300]}") from None


def _walk(value: Any, path: str, out: dict[str, set[str]]) -> None:
    if isinstance(value, dict):
        if path in MODELS:
            out.setdefault(path, set()).update(value)
            for key, item in value.items():
                _walk(item, f"{path}.{key}" if path else key, out)
    elif isinstance(value, list):
        for item in value:
            _walk(item, f"{path}[]", out)


@cache
def ooni_keys() -> dict[str, frozenset[str]]:
    """Per object path: the fields of OONI's model plus the keys OONI's measurements use."""
    seen: dict[str, set[str]] = {}
    for path in corpus_files():
        _walk(read(path), "", seen)
    return {path: frozenset({f.name for f in dataclasses.fields(model)}
                            | seen.get(path, set()) | OURS.get(path, set()))
            for path, model in MODELS.items()}


def _check_types(path: str, record: dict[str, Any], out: list[str]) -> None:
    if path == "test_keys.queries[]" and record.get("rcode") is not None and \
            (not isinstance(record["rcode"], int) or isinstance(record["rcode"], bool)):
        out.append(f"{path}.rcode is {record['rcode']!r}, not an integer")
    if path == "test_keys.queries[].answers[]" and "asn" in record and \
            not isinstance(record["asn"], int):
        out.append(f"{path}.asn is {record['asn']!r}, not an integer")
    if path == "test_keys.tls_handshakes[]" and \
            not isinstance(record.get("no_tls_verify"), bool):
        out.append(f"{path}.no_tls_verify is {record.get('no_tls_verify')!r}")
    if path == "test_keys.requests[].response":
        body = record.get("body")
        if not (isinstance(body, str) or (isinstance(body, dict) and body.get("format")
                                          == "base64" and isinstance(body.get("data"), str))):
            out.append(f"{path}.body is {str(body)[:40]!r}, not OONI's text or base64 form")
        if not isinstance(record.get("body_is_truncated"), bool):
            out.append(f"{path}.body_is_truncated is {record.get('body_is_truncated')!r}")


def problems(measurement: dict[str, Any]) -> list[str]:
    """Keys OONI does not define (and that lack ``x_``) and mistyped keys, as readable lines."""
    allowed = ooni_keys()
    out: list[str] = []

    def visit(value: Any, path: str) -> None:
        if isinstance(value, list):
            for item in value:
                visit(item, f"{path}[]")
            return
        if not isinstance(value, dict) or path not in MODELS:
            return
        for key in value:
            if key not in allowed[path] and not key.startswith("x_"):
                out.append(f"{path}.{key}" if path else key)
        _check_types(path, value, out)
        for key, item in value.items():
            visit(item, f"{path}.{key}" if path else key)

    visit(measurement, "")
    return sorted(set(out))


def older_format(m: dict[str, Any]) -> dict[str, Any]:
    """``m`` in the key names Kuzot wrote before OONI's extension prefix (``probe.core.wire``)."""
    old = copy.deepcopy(m)
    keys = old["test_keys"]

    def rename(record: dict[str, Any], new: str, former: str) -> None:
        if new in record:
            record[former] = record.pop(new)

    for query in keys["queries"]:
        for name in ("cnames", "ttl", "late_answers", "operation"):
            rename(query, f"x_{name}", name)
        for late in [query, *query.get("late_answers", [])]:
            if isinstance(late.get("rcode"), int):
                late["rcode"] = dns.rcode.to_text(dns.rcode.Rcode(late["rcode"]))
            for answer in late.get("answers") or []:
                rename(answer, "x_bogon", "bogon")
    for connect in keys["tcp_connect"]:
        rename(connect["status"], "x_operation", "operation")
    for record in [*keys["tls_handshakes"], *keys["requests"]]:
        rename(record, "x_operation", "operation")
    for request in keys["requests"]:
        response = request.get("response")
        if response:
            for name in ("body_length", "body_sha256", "title"):
                rename(response, f"x_{name}", name)
            response["body_sample"] = wire.body_bytes(response.pop("body"))[:2048] \
                .decode("utf-8", "replace")
    return old
