"""The lab's address plan: who lives where in the emulated censoring network.

```
 client ns (home broadband)    censor ns (ISP: router, resolver, middlebox)       world ns
 192.168.77.2 ---eth0/lan--- 192.168.77.1                                      (sites, DNS,
                              lo: 95.59.0.0/24 ISP services  ---wan/eth0---     control)
 mobile ns (a phone's data)   95.59.255.1/30 ------------------------------ 95.59.255.2/30
 100.72.0.2 ---wwan0/mob---- 100.72.0.1                                     lo: 88.212.0.0/16
```

The world's services use ordinary public-looking unicast addresses: answers in private or
documentation ranges would be bogons to a correct probe and confound the DNS scenarios. The
client side is private, as a home network is; the mobile subscriber sits in the shared
address space of carrier-grade NAT (RFC 6598), as mobile operators number their subscribers.
Both access networks reach the world through the same router, so one link can be cut while
the other stays up (a mobile-only shutdown).

IPv6: the world's services (DNS, public resolver, control) are dual-stack on public-looking
addresses in 2a0e:88::/32, and a site is dual-stack or IPv6-only when its scenario says so
(most Kyrgyz and Kazakh sites are IPv4-only, and so are the lab's by default). The ISP
delegates 2a0b:59:77::/64 to the home network, so the broadband client has IPv6 connectivity;
the mobile access network is IPv4-only, as many mobile operators' default access points are,
so the mobile client has none. ``check_host_overlap`` refuses to build the lab
when any of these blocks overlaps an address, route or resolver of the host itself; the
blocks exist only inside the lab's namespaces, whose only links are to each other.
"""

from __future__ import annotations

import ipaddress
from typing import Final

# Client side (a home network behind the ISP's router).
CLIENT_NET: Final = "192.168.77.0/24"
CLIENT_IP: Final = "192.168.77.2"
CLIENT_GATEWAY: Final = "192.168.77.1"

# The ISP's mobile access network (a phone or a modem on mobile data).
MOBILE_NET: Final = "100.72.0.0/24"
MOBILE_IP: Final = "100.72.0.2"
MOBILE_GATEWAY: Final = "100.72.0.1"

# The ISP: its link to the world and the services it runs on its own addresses.
ISP_NET: Final = "95.59.0.0/16"
CENSOR_UPLINK: Final = "95.59.255.1"
WORLD_UPLINK: Final = "95.59.255.2"
UPLINK_PREFIX: Final = 30
ISP_RESOLVER: Final = "95.59.0.53"
BLOCKPAGE: Final = "95.59.0.10"  # the ISP's blockpage server (as KZ and KG ISPs run)
NOTICE: Final = "95.59.0.11"  # a page no fingerprint knows: an unknown blockpage
PROXY: Final = "95.59.0.20"  # a transparent proxy that passes traffic to the real site
MITM: Final = "95.59.0.30"  # a TLS interception box with its own CA
UNKNOWN_BLOCKPAGE: Final = "95.59.0.12"  # a Russian blockpage in no fingerprint file
REDIRECTOR: Final = "95.59.0.13"  # answers every request with a redirect to the blockpage host
REDIRECTOR_UNKNOWN: Final = "95.59.0.14"  # the same, to a host no fingerprint knows by address
CENSOR_SERVICES: Final = (ISP_RESOLVER, BLOCKPAGE, NOTICE, PROXY, MITM, UNKNOWN_BLOCKPAGE,
                          REDIRECTOR, REDIRECTOR_UNKNOWN)

# The world: every site, the authoritative DNS server, a public resolver, the collector.
WORLD_NET: Final = "88.212.0.0/16"
AUTH_DNS: Final = "88.212.0.53"
PUBLIC_RESOLVER: Final = "88.212.8.8"
CONTROL_IP: Final = "88.212.250.10"
CONTROL_NAME: Final = "control.kuzot-lab.net"
COLLECTOR_BACKEND: Final = "127.0.0.1:8080"  # inside the world namespace, behind TLS
# A SOCKS5 proxy beyond the censor (a Tor relay, for the probe's purposes): it reaches the
# collector's addresses from the world side, where no censor rule applies.
SOCKS_PROXY: Final = "88.212.9.9"
SOCKS_PORT: Final = 1080
SITES_FIRST: Final = ipaddress.IPv4Address("88.212.10.1")
SITES_LAST: Final = ipaddress.IPv4Address("88.212.11.254")

# IPv6: the ISP's block (the home network's delegated /64, the uplink to the world) and the
# world's. The mobile network has no IPv6.
ISP_NET6: Final = "2a0b:59::/32"
CLIENT_NET6: Final = "2a0b:59:77::/64"
CLIENT_IP6: Final = "2a0b:59:77::2"
CLIENT_GATEWAY6: Final = "2a0b:59:77::1"
CENSOR_UPLINK6: Final = "2a0b:59:ffff::1"
WORLD_UPLINK6: Final = "2a0b:59:ffff::2"
UPLINK_PREFIX6: Final = 64
WORLD_NET6: Final = "2a0e:88::/32"
AUTH_DNS6: Final = "2a0e:88::53"
PUBLIC_RESOLVER6: Final = "2a0e:88:8::8"
CONTROL_IP6: Final = "2a0e:88:250::10"
SITES6_FIRST: Final = ipaddress.IPv6Address("2a0e:88:10::1")

# Certificate authorities: the lab's own (trusted by the probe and the control through
# ``--ca-file``) and the interception box's, which nobody trusts.
LAB_CA: Final = "Kuzot Lab Root CA"
ROGUE_CA: Final = "Lab State Security CA"

# A private address a lying resolver hands out (OONI's QA uses the same kind of bogon).
FORGED_BOGON: Final = "10.10.34.35"

# A public resolver abroad is tens of milliseconds away; an on-path injector is not. The
# delay is what lets an injected answer arrive first, as it does in the wild.
PUBLIC_RESOLVER_DELAY: Final = 0.15

LAB_NETWORKS: Final = (CLIENT_NET, MOBILE_NET, ISP_NET, WORLD_NET, ISP_NET6, WORLD_NET6)


def site_address(index: int) -> str:
    """The ``index``-th site address of the world (0-based)."""
    address = SITES_FIRST + index
    if address > SITES_LAST:
        raise ValueError(f"site address pool exhausted at index {index}")
    return str(address)


def site_address6(index: int) -> str:
    """The IPv6 address of the ``index``-th site (the same index as its IPv4 address)."""
    if index > int(SITES_LAST) - int(SITES_FIRST):
        raise ValueError(f"site address pool exhausted at index {index}")
    return str(SITES6_FIRST + index)


def overlapping(lab: tuple[str, ...], host: list[str]) -> list[tuple[str, str]]:
    """Pairs (lab block, host network or address) that overlap; pure, for the overlap check."""
    out = []
    for block in lab:
        lab_net = ipaddress.ip_network(block)
        for item in host:
            try:
                host_net = ipaddress.ip_network(item, strict=False)
            except ValueError:
                continue
            if host_net.version == lab_net.version and host_net.prefixlen > 0 \
                    and lab_net.overlaps(host_net):
                out.append((block, item))
    return out
