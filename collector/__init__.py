"""Kuzot collector: ingest, storage, control vantage, detection, metrics and alerts."""

__version__ = "0.1.0"
