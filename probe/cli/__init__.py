"""Command line of the probe: one module per command (``python -m probe ...``)."""
