"""The collector's HTTP API: handlers, validation, queries, the OpenAPI document, tokens, rate
limits, GeoIP."""
