"""TCP reachability: can a TCP connection to HOST:PORT be opened from here (a service port,
a Tor bridge, a VPN endpoint), and its verdict."""
