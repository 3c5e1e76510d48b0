"""The OpenAPI 3.1 document of the collector's HTTP API, served at ``/api/v1/openapi.json``.

Built from the same constants the implementation uses (verdicts, axes, rejection reasons,
query parameters), and checked against the running application by
``tests/collector/api/test_openapi.py``: every route is documented, every documented parameter is
accepted and others are refused, and every response validates against its schema.
"""

from __future__ import annotations

from typing import Any

from collector import __version__
from collector.api.query import (
    AGGREGATION_PARAMS,
    AXIS_NAMES,
    EVENT_PARAMETERS,
    EVENT_PARAMS,
    FEED_PARAMS,
    LIST_PARAMS,
    PAGE_PARAMS,
    PARAMETERS,
)
from collector.api.validate import KNOWN_TESTS, REASONS
from collector.events import kinds
from collector.events.i18n import LANGUAGES
from collector.store import COUNT_COLUMNS, VERDICTS

_TIME = {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$",
         "description": "UTC, 'YYYY-MM-DD HH:MM:SS' (OONI's format)", "example":
         "2024-05-01 12:00:00"}
_NULLABLE_STR = {"type": ["string", "null"]}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_PAGE_PARAMETERS: dict[str, dict[str, object]] = {
    "lang": {"description": "Language of the page (else chosen by Accept-Language).",
             "example": "ru", "enum": list(LANGUAGES)},
    "cc": {"description": "Only this country's events.", "example": "KG",
           "pattern": "^[A-Z]{2}$"},
}


def _parameters(names: tuple[str, ...],
                table: dict[str, dict[str, object]] = PARAMETERS) -> list[dict[str, Any]]:
    """Query parameters from the definitions the parser itself uses."""
    out = []
    for name in names:
        spec = dict(table[name])
        schema: dict[str, Any] = {"type": "string"}
        for key in ("enum", "pattern"):
            if key in spec:
                schema[key] = spec.pop(key)
        out.append({"name": name, "in": "query", "required": False, "schema": schema,
                    "description": spec["description"], "example": spec["example"]})
    return out


def _schemas() -> dict[str, Any]:
    analysis = {
        "type": ["object", "null"],
        "description": "Kuzot's reading of the measurement; null or absent when there is none.",
        "properties": {
            "verdict": {"enum": [*VERDICTS, None]},
            "layer": {"type": ["string", "null"], "pattern": "^[a-z0-9_]{1,32}$"},
            "mechanism": {"type": ["string", "null"], "pattern": "^[a-z0-9_]{1,32}$"},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "evidence": {"type": "array", "items": {"type": "string"}},
            "analysis_version": {"type": "integer", "minimum": 1, "maximum": 1_000_000,
                                 "description":
                                 "The version of the verdict rules of the measurement's "
                                 "kind of test (absent: 1)."},
            "evidence_fields": {
                "type": "object",
                "description": "The evidence as typed fields (probe.core.evidence); absent "
                               "in measurements recorded before it existed.",
                "properties": {
                    **{name: {"type": ["string", "null"]} for name in (
                        "failure", "control_failure", "blockpage", "confirmed", "issuer",
                        "certificate_sha256")},
                    "failed_layer": {"enum": ["dns", "tcp", "tls", "http", None]},
                    "control_unavailable": {"type": "boolean"},
                    "dns_inconsistent": {"type": "boolean"},
                    **{name: {"type": ["number", "null"], "exclusiveMinimum": 0} for name in (
                        "slowdown", "goodput_ratio", "handshake_ratio")},
                    "goodput_comparable": {"type": ["boolean", "null"]},
                },
            },
        },
    }
    row_properties: dict[str, Any] = {
        "uid": {"type": "string"},
        "probe_id": {"type": "string", "description": "A pseudonym (p- and 16 hex digits, "
                     "stable per probe) unless the request carries the operator's read "
                     "token."},
        "test_name": {"type": "string"}, "input": _NULLABLE_STR, "domain": _NULLABLE_STR,
        "probe_cc": {"type": "string", "pattern": "^[A-Z]{2}$"},
        "probe_asn": {"type": "string", "pattern": "^AS[0-9]+$"},
        "start_time": _TIME, "received_at": _TIME,
        "verdict": {"enum": [*VERDICTS, None]}, "layer": _NULLABLE_STR,
        "mechanism": _NULLABLE_STR,
        "location_source": {"enum": ["declared", "geoip"], "description":
                            "Where probe_cc/probe_asn come from: the probe's declaration, or "
                            "the GeoIP database at the submitter's address."},
        "location_mismatch": {"type": "boolean", "description":
                              "The declaration disagreed with the GeoIP database."},
    }
    aggregation_row = {
        "type": "object",
        "required": list(COUNT_COLUMNS),
        "properties": {
            **{axis: _NULLABLE_STR for axis in AXIS_NAMES},
            **{count: {"type": "integer", "minimum": 0} for count in COUNT_COLUMNS},
        },
        "additionalProperties": False,
    }
    return {
        "Error": {
            "type": "object", "required": ["error"],
            "properties": {
                "error": {"type": "string"},
                "rejected": {"type": "array", "items": _ref("Rejection")},
            },
        },
        "Rejection": {
            "type": "object", "required": ["index", "uid", "reason", "message"],
            "properties": {
                "index": {"type": "integer", "minimum": 0},
                "uid": _NULLABLE_STR,
                "reason": {"enum": list(REASONS)},
                "message": {"type": "string"},
            },
        },
        "Measurement": {
            "type": "object",
            "description": "OONI base data format (df-000) plus test_keys.analysis.",
            "required": ["measurement_uid", "probe_cc", "probe_asn", "test_name",
                         "measurement_start_time", "test_keys"],
            "properties": {
                "measurement_uid": {"type": "string", "pattern": "^[A-Za-z0-9._-]{8,128}$"},
                "probe_cc": {"type": "string", "pattern": "^[A-Z]{2}$"},
                "probe_asn": {"type": "string", "pattern": "^AS(0|[1-9][0-9]{0,9})$"},
                "test_name": {"enum": sorted(KNOWN_TESTS)},
                "measurement_start_time": _TIME,
                "input": _NULLABLE_STR,
                "probe_ip": {"description": "Ignored: stored as 127.0.0.1 whatever was "
                             "sent."},
                "annotations": {"type": "object", "description": "Stored with probe_id set "
                                "to the bearer token's probe id, whatever was sent."},
                "test_keys": {"type": "object", "properties": {"analysis": analysis}},
            },
        },
        "MeasurementBatch": {
            "type": "object", "required": ["measurements"],
            "properties": {"measurements": {"type": "array", "minItems": 1,
                                            "items": _ref("Measurement")}},
        },
        "IngestResult": {
            "type": "object", "required": ["stored", "duplicates"],
            "properties": {
                "stored": {"type": "array", "items": {"type": "string"},
                           "description": "Every uid of the batch, now durable."},
                "duplicates": {"type": "array", "items": {"type": "string"},
                               "description": "The uids that were already stored."},
            },
        },
        "Heartbeat": {
            "type": "object", "required": ["sent_at"],
            "properties": {
                "probe_id": {"type": ["string", "null"],
                             "description": "The token's probe id, when sent."},
                "sent_at": {"type": "string", "description": "UTC, OONI format or ISO 8601.",
                            "example": "2024-05-01T12:00:00Z"},
                "queue_depth": {"type": ["integer", "null"], "minimum": 0},
                "software_version": {"type": ["string", "null"], "maxLength": 64},
                "probe_cc": {"type": ["string", "null"], "description":
                             "The probe's declared country: the answer's event windows and "
                             "targets_version are that country's."},
            },
        },
        "HeartbeatReply": {
            "type": "object", "required": ["ok", "event_windows"],
            "properties": {"ok": {"const": True},
                           "event_windows": {"type": "array", "items": {"type": "object"}},
                           # The address the heartbeat came from: the probe scrubs it.
                           "observed_address": {"type": ["string", "null"]},
                           # The version GET /api/v1/targets serves the heartbeat's country.
                           "targets_version": {"type": "string"},
                           # Signed endpoints (collector.announce, probe.daemon.announce).
                           "endpoints_announcement": {
                               "type": "object", "required": ["payload", "signature"],
                               "properties": {"payload": {"type": "string"},
                                              "signature": {"type": "string"}}},
                           "probe_id": {"type": "string", "description":
                                        "The probe id of the bearer token."}},
        },
        "ControlRequest": {
            "type": "object", "required": ["http_request"],
            "properties": {
                "http_request": {"type": "string", "format": "uri"},
                "tcp_connect": {"type": "array", "maxItems": 32, "items": {"type": "string"}},
            },
        },
        "ControlView": {
            "type": "object",
            "required": ["dns", "tcp_connect", "tls_handshake", "http_request"],
            "properties": {"dns": {"type": "object"}, "tcp_connect": {"type": "object"},
                           "tls_handshake": {"type": "object"},
                           "http_request": {"type": "object"}},
        },
        "MeasurementRow": {
            "type": "object", "required": list(row_properties),
            "properties": {**row_properties, "measurement": _ref("Measurement")},
            "additionalProperties": False,
        },
        "MeasurementPage": {
            "type": "object", "required": ["measurements", "next_cursor"],
            "properties": {
                "measurements": {"type": "array", "items": _ref("MeasurementRow")},
                "next_cursor": {"type": ["string", "null"],
                                "description": "Pass as cursor for the next page; null at "
                                               "the end."},
            },
        },
        "AggregationRow": aggregation_row,
        "Aggregation": {
            "type": "object", "required": ["dimension_count", "result"],
            "properties": {
                "dimension_count": {"type": "integer", "minimum": 0, "maximum": 2},
                "result": {"type": "array", "items": _ref("AggregationRow")},
            },
        },
        "Event": {
            "type": "object",
            "required": ["id", "kind", "tier", "status", "start", "end", "updated_at", "cc",
                         "asns", "targets", "mechanism", "probes", "evidence"],
            "properties": {
                "id": {"type": ["string", "integer"]},
                "kind": {"enum": list(kinds.ALL)},
                "tier": {"enum": ["suspected", "likely", "confirmed"]},
                "status": {"enum": ["open", "closed"]},
                "start": {"type": "string"}, "end": {"type": ["string", "null"]},
                "updated_at": {"type": "string"}, "cc": {"type": "string"},
                "asns": {"type": "array", "items": {"type": "string"}},
                "targets": {"type": "array", "items": {"type": "string"}},
                "mechanism": _NULLABLE_STR, "probes": {"type": "integer", "minimum": 0},
                "evidence": {"type": "object"},
            },
        },
        "EventList": {"type": "object", "required": ["events"],
                      "properties": {"events": {"type": "array", "items": _ref("Event")}}},
        "Health": {"type": "object", "required": ["ok"],
                   "properties": {"ok": {"type": "boolean"}}},
        "TargetLists": {
            "type": "object", "required": ["probe_cc", "version", "targets"],
            "properties": {
                "probe_cc": {"type": "string", "pattern": "^[A-Z]{2}$"},
                "version": {"type": "string", "pattern": "^[0-9a-f]{20}$"},
                "targets": {"type": "array", "items": {
                    "type": "object",
                    "required": ["url", "category", "cc", "role", "interval_s", "priority"],
                    "properties": {
                        "url": {"type": "string"}, "category": {"type": "string"},
                        "cc": {"type": "string", "description": "Two letters, or * (every "
                                                                  "country)."},
                        "role": {"enum": ["test", "baseline", "canary"]},
                        "baseline": _NULLABLE_STR,
                        "interval_s": {"type": ["number", "null"], "description":
                                       "The entry's cadence; null: the probe's own."},
                        "priority": {"enum": ["high", "normal", "low"], "description":
                                     "high: measured at the probe's cadence (no cadence of "
                                     "its own, or the operator's override); normal: the "
                                     "probe paces it by its category; low: the operator's "
                                     "override, only in the rotating sample."},
                        "date_added": _NULLABLE_STR, "source": _NULLABLE_STR,
                        "notes": _NULLABLE_STR,
                    },
                }},
            },
        },
        "TargetHealth": {
            "type": "object", "required": ["days", "probe_cc", "counts", "entries"],
            "properties": {
                "days": {"type": "number"}, "probe_cc": _NULLABLE_STR,
                "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
                "entries": {"type": "array", "items": {
                    "type": "object",
                    "required": ["url", "cc", "category", "status", "failing_days",
                                 "failing_since", "last_ok", "last_failed", "last_failure",
                                 "failures"],
                    "properties": {
                        "url": {"type": "string"}, "cc": {"type": "string"},
                        "category": {"type": "string"},
                        "status": {"enum": ["flagged", "failing", "unchecked", "ok"]},
                        "failing_days": {"type": "number"},
                        "failing_since": _NULLABLE_STR, "last_ok": _NULLABLE_STR,
                        "last_failed": _NULLABLE_STR, "last_failure": _NULLABLE_STR,
                        "failures": {"type": "integer"},
                    },
                }},
            },
        },
    }


def document() -> dict[str, Any]:
    """The whole OpenAPI document (a fresh dict each call)."""
    bearer: list[dict[str, list[str]]] = [{"probeToken": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Kuzot collector API", "version": __version__,
            "description": "Ingest of measurements from Kuzot probes, the control vantage, "
                           "and read access for researchers and dashboards.",
            "license": {"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
        },
        "components": {
            "securitySchemes": {"probeToken": {
                "type": "http", "scheme": "bearer",
                "description": "Per-probe token from `python -m collector token issue`."}},
            "schemas": _schemas(),
        },
        "paths": {
            "/api/v1/measurements": {
                "post": {
                    "operationId": "submitMeasurements",
                    "summary": "Submit one measurement or a batch; idempotent by uid.",
                    "security": bearer,
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"oneOf": [_ref("Measurement"), _ref("MeasurementBatch")]}}}},
                    "responses": {
                        "200": _json(_ref("IngestResult"), "Stored durably."),
                        "400": _error("Malformed; nothing of the batch is stored. `rejected` "
                                      "lists each invalid measurement."),
                        "401": _error("No bearer token, or a malformed one."),
                        "403": _error("Unknown or revoked token."),
                        "413": _error("Body larger than limits.max_body_bytes."),
                        "429": _error("This probe exceeded limits.rate_per_minute; see "
                                      "Retry-After."),
                        "503": _error("The database is unavailable; retry later."),
                    },
                },
                "get": {
                    "operationId": "listMeasurements",
                    "summary": "Measurements, newest first, with keyset pagination.",
                    "parameters": _parameters(LIST_PARAMS),
                    "responses": {
                        "200": {"description": "One page (format=CSV: text/csv, the next "
                                "cursor in the X-Next-Cursor header).", "content": {
                                    "application/json": {"schema": _ref("MeasurementPage")},
                                    "text/csv": {"schema": {"type": "string"}}}},
                        "400": _error("A parameter is unknown, repeated or malformed."),
                        "503": _error("The database is unavailable."),
                    },
                },
            },
            "/api/v1/measurement/{uid}": {"get": {
                "operationId": "getMeasurement",
                "summary": "One measurement document as stored (OONI's format); the probe id "
                           "in annotations is a pseudonym unless the operator's read token "
                           "is sent.",
                "parameters": [{"name": "uid", "in": "path", "required": True,
                                "schema": {"type": "string",
                                           "pattern": "^[A-Za-z0-9._-]{8,128}$"}}],
                "responses": {
                    "200": _json(_ref("Measurement"), "The measurement."),
                    "400": _error("Not a measurement uid."),
                    "404": _error("No measurement with this uid."),
                    "503": _error("The database is unavailable."),
                },
            }},
            "/api/v1/aggregation": {"get": {
                "operationId": "aggregateMeasurements",
                "summary": "Counts by verdict grouped by up to two axes (like OONI's "
                           "aggregation API).",
                "parameters": _parameters(AGGREGATION_PARAMS),
                "responses": {
                    "200": {"description": "Counts per group (format=CSV: text/csv).",
                            "content": {"application/json": {"schema": _ref("Aggregation")},
                                        "text/csv": {"schema": {"type": "string"}}}},
                    "400": _error("A parameter is malformed, or too many groups."),
                    "503": _error("The database is unavailable."),
                },
            }},
            "/api/v1/heartbeat": {"post": {
                "operationId": "heartbeat",
                "summary": "Probe liveness: last seen, queue depth, software version.",
                "security": bearer,
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _ref("Heartbeat")}}},
                "responses": {
                    "200": _json(_ref("HeartbeatReply"), "Recorded."),
                    "400": _error("Malformed heartbeat."),
                    "401": _error("No bearer token, or a malformed one."),
                    "403": _error("Unknown or revoked token."),
                    "413": _error("Heartbeat larger than limits.max_heartbeat_bytes."),
                    "503": _error("The database is unavailable."),
                },
            }},
            "/api/v1/control": {"post": {
                "operationId": "control",
                "summary": "Measure a URL from the collector (OONI test-helper shape).",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _ref("ControlRequest")}}},
                "responses": {
                    "200": _json(_ref("ControlView"), "What the control saw."),
                    "400": _error("Malformed request."),
                    "503": _error("control.max_concurrent measurements are running; retry "
                                  "after Retry-After seconds."),
                },
            }},
            "/api/v1/events": {"get": {
                "operationId": "listEvents",
                "summary": "Detected shutdown, block and throttling events; one event is updated "
                           "in place as it grows or closes.",
                "parameters": _parameters(EVENT_PARAMS, EVENT_PARAMETERS),
                "responses": {
                    "200": _json(_ref("EventList"), "Events overlapping since/until, latest "
                                 "start first."),
                    "400": _error("A parameter is unknown, repeated or malformed."),
                    "503": _error("The database is unavailable."),
                },
            }},
            "/api/v1/sni-ab": {"get": {
                "operationId": "sniAbEndpoint",
                "summary": "Where the SNI A/B endpoint listens (TLS on its own port, any SNI, "
                           "one fixed object; `?bytes=N` for its first N bytes) and the SHA-256 "
                           "of its certificate, for the probe's throttling test.",
                "responses": {
                    "200": _json({
                        "type": "object",
                        "required": ["port", "path", "object_bytes", "certificate_sha256",
                                     "host"],
                        "properties": {
                            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
                            "path": {"type": "string", "pattern": "^/"},
                            "object_bytes": {"type": "integer", "minimum": 1},
                            "certificate_sha256": {"type": "string",
                                                   "pattern": "^[0-9a-f]{64}$"},
                            "host": {"type": ["string", "null"], "description":
                                     "Address to dial; null: the collector URL's host."},
                        },
                    }, "The endpoint."),
                    "404": _error("The endpoint is off (sni_ab.listen is not set)."),
                },
            }},
            "/api/v1/targets": {"get": {
                "operationId": "targetLists",
                "summary": "The target lists a probe of one country measures: its country's "
                           "list and the global one, each URL once, with per-entry cadence and "
                           "priority. `version` is also the strong ETag; send it back in "
                           "If-None-Match to get 304 while nothing changed.",
                "security": bearer,
                "parameters": [{"name": "probe_cc", "in": "query", "required": True,
                                "example": "KG", "description": "Two-letter country code.",
                                "schema": {"type": "string", "pattern": "^[A-Z]{2}$"}}],
                "responses": {
                    "200": _json(_ref("TargetLists"), "The lists (header ETag: the version)."),
                    "304": {"description": "Unchanged since the version in If-None-Match."},
                    "400": _error("probe_cc is missing or not a country code."),
                    "401": _error("No bearer token."),
                    "403": _error("Unknown or revoked token."),
                    "404": _error("No lists are served (target_lists.directory is not set)."),
                    "503": _error("The database is unavailable."),
                },
            }},
            "/api/v1/targets/health": {"get": {
                "operationId": "targetListHealth",
                "summary": "List health: per served entry, whether the control vantage's "
                           "fetches of it work; flagged when all failed over `days` days "
                           "(site gone, moved, parked, or refusing the control).",
                "security": bearer,
                "parameters": [
                    {"name": "probe_cc", "in": "query", "required": False, "example": "KG",
                     "schema": {"type": "string", "pattern": "^[A-Z]{2}$"}},
                    {"name": "days", "in": "query", "required": False, "description":
                     "Flag entries failing for at least this many days (default "
                     "target_lists.health_days).", "schema": {"type": "number"}},
                    {"name": "status", "in": "query", "required": False, "schema": {
                        "enum": ["flagged", "failing", "unchecked", "ok"]}}],
                "responses": {
                    "200": _json(_ref("TargetHealth"), "Entries, flagged ones first."),
                    "400": _error("A bad probe_cc, days or status."),
                    "401": _error("No bearer token."),
                    "403": _error("Unknown or revoked token."),
                    "404": _error("No lists are served (target_lists.directory is not set)."),
                },
            }},
            "/api/v1/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document.",
                "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1 document.")},
            }},
            "/metrics": {"get": {
                "operationId": "metrics", "summary": "Prometheus text exposition.",
                "responses": {"200": {"description": "Metrics.", "content": {
                    "text/plain": {"schema": {"type": "string"}}}}},
            }},
            "/healthz": {"get": {
                "operationId": "health", "summary": "Liveness and store check.",
                "responses": {"200": _json(_ref("Health"), "Healthy."),
                              "503": _error("The database is unavailable.")},
            }},
            "/": {"get": {
                "operationId": "statusPage", "summary": "Status page for media partners.",
                "parameters": _parameters(PAGE_PARAMS, _PAGE_PARAMETERS),
                "responses": {"200": {"description": "HTML page.", "content": {
                    "text/html": {"schema": {"type": "string"}}}},
                    "400": _error("An unknown or malformed parameter.")},
            }},
            "/targets/health": {"get": {
                "operationId": "targetListHealthPage",
                "summary": "The list health as a plain page (same parameters).",
                "security": bearer,
                "parameters": [
                    {"name": "probe_cc", "in": "query", "required": False, "example": "KG",
                     "schema": {"type": "string", "pattern": "^[A-Z]{2}$"}},
                    {"name": "days", "in": "query", "required": False, "description":
                     "Flag entries failing for at least this many days (default "
                     "target_lists.health_days).", "schema": {"type": "number"}},
                    {"name": "status", "in": "query", "required": False, "schema": {
                        "enum": ["flagged", "failing", "unchecked", "ok"]}}],
                "responses": {
                    "200": {"description": "HTML page.", "content": {
                        "text/html": {"schema": {"type": "string"}}}},
                    "400": _error("A bad probe_cc, days or status."),
                    "401": _error("No bearer token."),
                    "403": _error("Unknown or revoked token."),
                    "404": _error("No lists are served (target_lists.directory is not set)."),
                },
            }},
            "/events/{event_id}": {"get": {
                "operationId": "eventPage",
                "summary": "One event in plain sentences, with sample measurements (the "
                           "link in alerts).",
                "parameters": [{"name": "event_id", "in": "path", "required": True,
                                "schema": {"type": "string"}},
                               *_parameters(PAGE_PARAMS, _PAGE_PARAMETERS)],
                "responses": {
                    "200": {"description": "HTML page.", "content": {
                        "text/html": {"schema": {"type": "string"}}}},
                    "400": _error("An unknown or malformed parameter."),
                    "404": {"description": "No such event (or ended over a week ago).",
                            "content": {"text/html": {"schema": {"type": "string"}}}},
                },
            }},
            "/events.atom": {"get": {
                "operationId": "eventFeed",
                "summary": "Atom feed of the events of the last week (all, or one country's).",
                "parameters": _parameters(FEED_PARAMS, _PAGE_PARAMETERS),
                "responses": {
                    "200": {"description": "Atom feed.", "content": {
                        "application/atom+xml": {"schema": {"type": "string"}}}},
                    "400": _error("An unknown or malformed parameter."),
                },
            }},
        },
    }
