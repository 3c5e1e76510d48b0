"""The network layer: sockets, timeouts, timing capture and error classification.

Everything here returns records (plain dicts in OONI's data formats) instead of raising on
network failures; ``probe.core.failures.classify`` is called only inside this package.
"""

from probe.netx.trace import Trace

__all__ = ["Trace"]
