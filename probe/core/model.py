"""The measurement at the probe/collector seam, typed: envelope and per-test keys.

A measurement crosses the seam as JSON in OONI's data format (design §2, a contract). These
frozen dataclasses are its typed view: ``Measurement.from_wire(document)`` reads one (raising
``ModelError`` with the key path when a key the model types does not fit), ``to_wire()`` gives
back the same JSON, byte for byte once serialised (``probe.core.record``); keys the model does
not type (OONI's extensions, a newer probe's additions) ride along untouched in ``extra``.

What is typed:

* the envelope (``Measurement``): OONI's df-000 keys;
* ``test_keys`` by ``test_name`` (``TEST_KEYS``): web connectivity (OONI's keys, with the DNS,
  TCP, TLS and HTTP records), the platform tests (``telegram``, ``whatsapp``, ``signal``,
  ``facebook_messenger``, and ``platform`` for the others), ``throttling``, ``connectivity``
  (the ladder), ``censor_trace``; any other accepted test name reads as ``TestKeys`` (its
  ``analysis`` typed, the rest kept);
* ``analysis`` (``Analysis``): Kuzot's verdict with ``analysis_version`` and its typed
  evidence (``probe.core.evidence.Evidence``).

Nested observations that no reader needs typed (network events, the control's view, the
throttling flows) are JSON objects kept as parsed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from probe.core.evidence import Evidence
from probe.core.record import JSONObject, ModelError, WireRecord, read

__all__ = [
    "Analysis", "CensorTraceKeys", "ConnectivityKeys", "DNSAnswer", "DNSQuery", "Evidence",
    "HTTPRequest", "HTTPResponse", "Measurement", "ModelError", "PlatformKeys", "TCPConnect",
    "TCPStatus", "TEST_KEYS", "TLSHandshake", "TestKeys", "ThrottlingKeys",
    "WebConnectivityKeys", "keys_model",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Analysis(WireRecord):
    """Kuzot's ``test_keys.analysis``: the verdict, a pure versioned function of the keys."""

    OMIT_NONE: ClassVar[frozenset[str]] = frozenset({"analysis_version", "evidence_fields"})

    verdict: str | None = None
    layer: str | None = None
    mechanism: str | None = None
    confidence: float | None = None
    evidence: tuple[str, ...] | None = None
    analysis_version: int | None = None
    evidence_fields: Evidence | None = None

    @property
    def version(self) -> int:
        """The rule set the verdict came from: a verdict without ``analysis_version`` is 1."""
        return self.analysis_version if self.analysis_version is not None else 1


@dataclass(frozen=True, slots=True, kw_only=True)
class TestKeys(WireRecord):
    """``test_keys`` of any test: its ``analysis`` typed, every other key kept."""

    analysis: Analysis | None = None


# --- web connectivity: OONI's archival records ---------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class DNSAnswer(WireRecord):
    answer_type: str | None = None
    ipv4: str | None = None
    ipv6: str | None = None
    hostname: str | None = None
    ttl: int | None = None
    asn: int | None = None
    as_org_name: str | None = None
    x_bogon: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DNSQuery(WireRecord):
    answers: tuple[DNSAnswer, ...] | None = None
    engine: str | None = None
    failure: str | None = None
    hostname: str | None = None
    query_type: str | None = None
    resolver_address: str | None = None
    # An integer in OONI's format; a name ("NXDOMAIN") in older Kuzot measurements.
    rcode: int | str | None = None
    t0: float | None = None
    t: float | None = None
    transaction_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TCPStatus(WireRecord):
    success: bool | None = None
    failure: str | None = None
    blocked: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TCPConnect(WireRecord):
    ip: str | None = None
    port: int | None = None
    status: TCPStatus | None = None
    t0: float | None = None
    t: float | None = None
    transaction_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TLSHandshake(WireRecord):
    address: str | None = None
    server_name: str | None = None
    failure: str | None = None
    tls_version: str | None = None
    cipher_suite: str | None = None
    negotiated_protocol: str | None = None
    no_tls_verify: bool | None = None
    peer_certificates: tuple[Any, ...] | None = None
    t0: float | None = None
    t: float | None = None
    transaction_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPResponse(WireRecord):
    code: int | None = None
    # Text, or ``{"format": "base64", "data": ...}`` (OONI's MaybeBinaryData).
    body: str | JSONObject | None = None
    body_is_truncated: bool | None = None
    headers: JSONObject | None = None
    headers_list: tuple[Any, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class HTTPRequest(WireRecord):
    failure: str | None = None
    request: JSONObject | None = None
    response: HTTPResponse | None = None
    t0: float | None = None
    t: float | None = None
    transaction_id: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Observations(WireRecord):
    """The DNS, TCP, TLS and HTTP records shared by web connectivity and platform tests."""

    queries: tuple[DNSQuery, ...] | None = None
    tcp_connect: tuple[TCPConnect, ...] | None = None
    tls_handshakes: tuple[TLSHandshake, ...] | None = None
    requests: tuple[HTTPRequest, ...] | None = None
    network_events: tuple[JSONObject, ...] | None = None
    analysis: Analysis | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class WebConnectivityKeys(_Observations):
    """``web_connectivity``: OONI's keys with OONI's meaning, plus Kuzot's ``analysis``."""

    control: JSONObject | None = None
    control_failure: str | None = None
    dns_experiment_failure: str | None = None
    http_experiment_failure: str | None = None
    dns_consistency: str | None = None
    body_length_match: bool | None = None
    body_proportion: float | None = None
    status_code_match: bool | None = None
    headers_match: bool | None = None
    title_match: bool | None = None
    # A string naming the blocked step ("dns", "tcp_ip", "http-diff"...), false, or null.
    blocking: str | bool | None = None
    accessible: bool | None = None
    x_control_request: JSONObject | None = None
    x_ipv6_available: bool | None = None
    x_bogon_answers: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlatformKeys(_Observations):
    """A platform test (Telegram, WhatsApp, Signal, Facebook Messenger): OONI-like keys per
    platform (kept in ``extra``), the endpoints measured and their groups' verdicts."""

    x_platform: str | None = None
    x_endpoints: tuple[JSONObject, ...] | None = None
    x_groups: JSONObject | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ThrottlingKeys(TestKeys):
    """``throttling``: timed transfers of a target and its baseline, the SNI A/B flows, their
    summaries. A run that failed before measuring has ``failure`` and ``operation`` only."""

    target: str | None = None
    baseline: str | None = None
    queries: tuple[DNSQuery, ...] | None = None
    flows: tuple[JSONObject, ...] | None = None
    sni_ab: JSONObject | None = None
    sni_ab_failure: str | None = None
    network_events: tuple[JSONObject, ...] | None = None
    x_budget: JSONObject | None = None
    summary: JSONObject | None = None
    sni_ab_result: JSONObject | None = None
    failure: str | None = None
    operation: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectivityAnalysis(Analysis):
    """The ladder's analysis: ``online`` and a one-line ``summary`` instead of a verdict."""

    online: bool | None = None
    summary: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectivityKeys(WireRecord):
    """``connectivity``: the ladder's rungs (gateway, resolver, domestic, foreign,
    collector), each ``{reachable, failure, ...}``."""

    rungs: JSONObject | None = None
    gateway_known: bool | None = None
    analysis: ConnectivityAnalysis | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CensorTraceKeys(TestKeys):
    """``censor_trace``: a TTL-limited trace of a trigger and a control name."""

    trigger: str | None = None
    control_name: str | None = None
    layer: str | None = None
    failure: str | None = None


TEST_KEYS: dict[str, type[WireRecord]] = {
    "web_connectivity": WebConnectivityKeys,
    "telegram": PlatformKeys,
    "whatsapp": PlatformKeys,
    "signal": PlatformKeys,
    "facebook_messenger": PlatformKeys,
    "platform": PlatformKeys,
    "throttling": ThrottlingKeys,
    "connectivity": ConnectivityKeys,
    "censor_trace": CensorTraceKeys,
}


def keys_model(test_name: str | None) -> type[WireRecord]:
    """The model of ``test_keys`` for a test name (``TestKeys`` for the others)."""
    return TEST_KEYS.get(test_name or "", TestKeys)


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement(WireRecord):
    """One measurement: OONI's base data format (df-000) around the test's keys."""

    data_format_version: str | None = None
    measurement_start_time: str | None = None
    test_start_time: str | None = None
    test_runtime: float | None = None
    test_name: str | None = None
    test_version: str | None = None
    input: str | None = None
    probe_asn: str | None = None
    probe_cc: str | None = None
    probe_network_name: str | None = None
    probe_ip: str | None = None
    resolver_ip: str | None = None
    report_id: str | None = None
    measurement_uid: str | None = None
    software_name: str | None = None
    software_version: str | None = None
    annotations: JSONObject | None = None
    test_keys: Any = None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], path: str = "$") -> Self:
        """The measurement of ``data``, its ``test_keys`` read by the model of its
        ``test_name`` (``keys_model``)."""
        record = read(cls, data, path)
        keys = record.test_keys
        if keys is None:
            return record
        if not isinstance(keys, dict):
            raise ModelError(f"{path}.test_keys: expected an object")
        typed = keys_model(record.test_name).from_wire(keys, f"{path}.test_keys")
        return dataclasses.replace(record, test_keys=typed)

    @property
    def analysis(self) -> Analysis | None:
        """The verdict in ``test_keys.analysis``, if any."""
        keys = self.test_keys
        found = getattr(keys, "analysis", None)
        return found if isinstance(found, Analysis) else None

