"""The on-path injector: forges packets with scapy, racing the real ones, as a DPI box does.

Run inside the censor namespace as ``python -m tests.lab.injector CONFIG.json`` (needs
CAP_NET_RAW). It reads every IPv4 frame arriving on the censor's client-side interface from a
packet socket (which sees a packet before netfilter may drop it) and, for the configured
matches:

* ``dns``: answers a query for the name with a forged A record, spoofed from the resolver
  the client asked; the real answer still arrives later (OONI's duplicate-response evidence).
  Queries to the ISP's own resolver are left alone: injection happens at the border.
* ``fin``: after a TCP payload containing the match (a ClientHello's SNI, a Host header),
  sends the client a FIN|ACK that acknowledges the payload, as if the server closed.
* ``http_blockpage``: sends the client the ISP's blockpage as the server's answer, then FIN;
  ``http_unknown_blockpage`` the same with the blockpage no fingerprint knows.

For ``fin`` and the forged pages the scenario also drops the matching packet with iptables,
so the real server never answers. Frames are screened with a few byte comparisons before
scapy parses them, so bulk transfers through the censor cost little.
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, TCP, UDP

from tests.lab import pages
from tests.lab.plan import ISP_RESOLVER

ETH_P_IP = 0x0800
PACKET_OUTGOING = 4


def blockpage_response(page: str = pages.BLOCKPAGE) -> bytes:
    """The forged answer: one segment, the body delimited by the FIN that follows (no
    Content-Length), as on-path injectors commonly send it."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    return head + page.encode()


_FORGED_PAGES = {"http_blockpage": pages.BLOCKPAGE,
                 "http_unknown_blockpage": pages.UNKNOWN_BLOCKPAGE}


def forge_dns(packet: IP, answer: str) -> IP:
    query = packet[DNS]
    return (IP(src=packet.dst, dst=packet.src)
            / UDP(sport=packet[UDP].dport, dport=packet[UDP].sport)
            / DNS(id=query.id, qr=1, rd=query.rd, ra=1, qd=query.qd,
                  an=DNSRR(rrname=query[DNSQR].qname, type="A", ttl=300, rdata=answer)))


def forge_tcp(packet: IP, payload: bytes = b"") -> list[IP]:
    """Segments from the server to the client that acknowledge ``packet``'s payload."""
    tcp = packet[TCP]
    acked = tcp.seq + len(bytes(tcp.payload))
    back = IP(src=packet.dst, dst=packet.src)
    out = []
    seq = tcp.ack
    if payload:
        out.append(back / TCP(sport=tcp.dport, dport=tcp.sport, flags="PA", seq=seq, ack=acked,
                              window=65535) / payload)
        seq += len(payload)
    out.append(back / TCP(sport=tcp.dport, dport=tcp.sport, flags="FA", seq=seq, ack=acked,
                          window=65535))
    return out


def _candidate(ip_packet: bytes) -> bool:
    """Cheap screen: a UDP datagram to port 53, or a TCP segment with a payload."""
    if len(ip_packet) < 28 or ip_packet[0] >> 4 != 4:
        return False
    header = (ip_packet[0] & 0x0F) * 4
    proto = ip_packet[9]
    if proto == 17:
        return int.from_bytes(ip_packet[header + 2:header + 4], "big") == 53
    if proto == 6 and len(ip_packet) >= header + 20:
        data_offset = (ip_packet[header + 12] >> 4) * 4
        total = int.from_bytes(ip_packet[2:4], "big")
        return total > header + data_offset
    return False


def decide(packet: IP, rules: list[dict[str, Any]]) -> list[IP]:
    """The forged packets for one observed packet (pure: no I/O)."""
    if packet.haslayer(DNS) and packet.haslayer(UDP) and packet[DNS].qr == 0 \
            and packet[DNS].qdcount and packet.dst != ISP_RESOLVER:
        name = packet[DNSQR].qname.decode(errors="replace").rstrip(".").lower()
        for rule in rules:
            if rule["kind"] == "dns" and rule["match"] == name and packet[DNSQR].qtype == 1:
                return [forge_dns(packet, rule["answer"])]
        return []
    if packet.haslayer(TCP):
        payload = bytes(packet[TCP].payload)
        for rule in rules:
            if rule["kind"] in ("fin", *_FORGED_PAGES) and rule["match"].encode() in payload:
                page = _FORGED_PAGES.get(rule["kind"])
                return forge_tcp(packet, blockpage_response(page) if page else b"")
    return []


def run(config: dict[str, Any]) -> None:
    rules = config["injections"]
    listen = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    listen.bind((config["interface"], ETH_P_IP))
    send = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    Path(config["ready_file"]).write_text("ready\n")
    while True:
        frame, address = listen.recvfrom(65535)
        if address[2] == PACKET_OUTGOING:
            continue
        ip_packet = frame[14:]
        if not _candidate(ip_packet):
            continue
        try:
            forged = decide(IP(ip_packet), rules)
        except Exception:  # a frame scapy cannot parse is not ours to answer
            continue
        for packet in forged:
            send.sendto(bytes(packet), (packet.dst, 0))


if __name__ == "__main__":
    run(json.loads(Path(sys.argv[1]).read_text()))
