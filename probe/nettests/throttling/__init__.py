"""Throttling: target against co-hosted baseline, the SNI A/B test, and their statistics."""
