"""Events as the collector publishes them: what kinds there are (``kinds``)."""
