"""What the collector may import from the probe: typed config, the failure vocabulary, scrubbing,
bogons, the measurement envelope and wire format."""
