"""Web connectivity: DNS, TCP, TLS and HTTP for one URL compared with the control, and its
verdict."""
