"""Outside-in shutdown signal: the collector probes configured address blocks itself.

This package holds the pieces of a Trinocular-style active prober, each with one job:
``belief`` is the pure per-/24 belief model (no I/O); the prober and its schedule (to come)
build on it. ``blocks`` reads the operator's block and opt-out files; ``pacer`` bounds the total
packet rate.
"""
