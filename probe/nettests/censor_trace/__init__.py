"""Censor location: the TTL-limited trace, its analysis and when to run it."""
