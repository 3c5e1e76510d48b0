"""What the collector may import from the probe: typed config, the failure vocabulary, scrubbing,
bogons, the measurement envelope and wire format, the typed measurement model (``model``,
``record``) and the verdict's typed evidence (``evidence``)."""
