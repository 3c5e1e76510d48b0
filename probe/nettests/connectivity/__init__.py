"""The connectivity ladder: how far the probe's link reaches."""
