"""Real local servers for tests: HTTPS with a trustme CA, TCP reset/blackhole, a DNS server."""
