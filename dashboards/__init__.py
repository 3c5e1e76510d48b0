"""Grafana dashboards for Kuzot, generated from code (``python -m dashboards.build``)."""
