"""The ``tcp_reachability:`` section of the probe config.

Off by default: the endpoints are the operator's choice (a messenger's service port, a bridge,
a VPN endpoint). Each endpoint is one daemon job every ``interval`` (faster inside event
windows, like sites), within the day's data budget; one measurement is a name lookup and at
most ``max_addresses`` connects, a few hundred bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from probe.core.typed_config import checked, duration_field, is_host_port, positive


def _endpoints(value: tuple[str, ...]) -> str | None:
    for item in value:
        if is_host_port(item):
            return f"not HOST:PORT: {item!r}"
    if len(set(value)) != len(value):
        return "an endpoint is listed twice"
    return None


@dataclass(frozen=True, slots=True)
class TcpReachability:
    enabled: bool = False
    endpoints: tuple[str, ...] = checked((), _endpoints)
    interval: float = duration_field(3600.0, positive)
    timeout: float = duration_field(5.0, positive)
    max_addresses: int = checked(4, positive)
