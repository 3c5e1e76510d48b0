"""Prometheus metrics of the collector: exposition, ingest, detection, fleet."""
