"""Kuzot probe: measures reachability, DNS, TLS, HTTP and throttling from inside a network."""

__version__ = "0.1.0"
