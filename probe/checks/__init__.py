"""Checks: each runs one kind of measurement and returns OONI-shaped ``test_keys``."""
