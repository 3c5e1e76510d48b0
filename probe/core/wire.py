"""OONI's data format on the wire: response bodies, and Kuzot's older key names.

Kuzot writes OONI's data format (df-000 and its sub-formats), judged by OONI's own loader
(``oonidata``): OONI's types where OONI has the key, and Kuzot's extra keys inside objects OONI
defines carry the ``x_`` prefix that OONI's format reserves for extensions.

Measurements written before that rule (and still stored by collectors and probes' spools) used
other names. ``upgrade`` renames them to the current ones, so a reader of stored measurements
(``python -m probe analyze``, a re-analysis on the collector) reads old and new alike:

=============================================  ===========================================
older Kuzot measurements                         now
=============================================  ===========================================
``queries[].rcode`` "NOERROR", "NXDOMAIN", ...   the integer code (0, 3, ...), as OONI
``queries[].cnames`` / ``ttl`` / ``late_answers``  ``x_cnames`` / ``x_ttl`` / ``x_late_answers``
``queries[].answers[].bogon``                    ``x_bogon``
``operation`` beside a failure (queries,          ``x_operation``
``tcp_connect[].status``, ``tls_handshakes``,
``requests``)
``requests[].response.body_length`` /             ``x_body_length`` / ``x_body_sha256`` /
``body_sha256`` / ``title``                       ``x_title``
``requests[].response.body_sample`` (2 KiB)       ``body`` (OONI's, up to 512 KiB), marked
                                                 ``body_is_truncated`` when it was a prefix
=============================================  ===========================================

Pure functions, no I/O. ``upgrade`` touches only measurements whose ``software_name`` is
Kuzot's: an OONI measurement is read exactly as OONI recorded it.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

import dns.rcode

Record = dict[str, Any]
SOFTWARE_NAME = "kuzot"


def ooni_body(body: bytes, truncated: bool = False) -> str | dict[str, str]:
    """The body as OONI's data format stores it (``MaybeBinaryData``): the text when it is
    valid UTF-8, else base64 with its format named, so no byte is lost or re-encoded.

    A ``truncated`` body may end inside a multi-byte character; those last one to three bytes
    are dropped (the body is marked truncated anyway) rather than turning a whole page of text
    into base64, a third larger and unreadable without decoding."""
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        if truncated and exc.start >= len(body) - 3 and exc.reason == "unexpected end of data":
            return body[:exc.start].decode("utf-8")
        return {"format": "base64", "data": base64.b64encode(body).decode("ascii")}


def body_bytes(body: object) -> bytes:
    """The bytes of a body in OONI's form (text or ``{"format": "base64", "data"}``); empty
    for anything else (an absent body, or a malformed one in a stored measurement)."""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, dict) and body.get("format") == "base64" and \
            isinstance(body.get("data"), str):
        try:
            return base64.b64decode(body["data"], validate=True)
        except ValueError:
            return b""
    return b""


def _rename(record: Any, old: str, new: str) -> None:
    if isinstance(record, dict) and old in record and new not in record:
        record[new] = record.pop(old)


def _rcode(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return int(dns.rcode.from_text(value))
        except (ValueError, dns.rcode.UnknownRcode):
            return value
    return value


def _upgrade_query(query: Any) -> None:
    if not isinstance(query, dict):
        return
    for old in ("cnames", "ttl", "late_answers", "operation"):
        _rename(query, old, f"x_{old}")
    if "rcode" in query:
        query["rcode"] = _rcode(query["rcode"])
    for answer in query.get("answers") or []:
        _rename(answer, "bogon", "x_bogon")
    for late in query.get("x_late_answers") or []:
        if isinstance(late, dict) and "rcode" in late:
            late["rcode"] = _rcode(late["rcode"])
            for answer in late.get("answers") or []:
                _rename(answer, "bogon", "x_bogon")


def _upgrade_response(response: Any) -> None:
    if not isinstance(response, dict):
        return
    for old in ("body_length", "body_sha256", "title"):
        _rename(response, old, f"x_{old}")
    sample = response.pop("body_sample", None)
    if "body" not in response and isinstance(sample, str):
        response["body"] = sample
        length = response.get("x_body_length")
        if isinstance(length, int) and length > len(sample.encode("utf-8")):
            response["body_is_truncated"] = True


def upgrade(measurement: Record) -> Record:
    """A copy of ``measurement`` with older Kuzot key names renamed (table above); any other
    measurement (OONI's, or one already current) comes back unchanged."""
    if measurement.get("software_name") != SOFTWARE_NAME:
        return measurement
    keys = measurement.get("test_keys")
    if not isinstance(keys, dict):
        return measurement
    out = copy.deepcopy(measurement)
    keys = out["test_keys"]
    for query in keys.get("queries") or []:
        _upgrade_query(query)
    for connect in keys.get("tcp_connect") or []:
        if isinstance(connect, dict):
            _rename(connect.get("status"), "operation", "x_operation")
    for handshake in keys.get("tls_handshakes") or []:
        _rename(handshake, "operation", "x_operation")
    for request in keys.get("requests") or []:
        if isinstance(request, dict):
            _rename(request, "operation", "x_operation")
            _upgrade_response(request.get("response"))
    return out
