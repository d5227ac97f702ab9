"""Slow, exact conversions between IP address text and the (hi, lo) uint64 halves of FlowBatch.

For alerts, tests and configuration only: the hot path parses addresses in batch kernels
(see ``beaconwatch.decode``), because ``ipaddress`` costs microseconds per call.
"""

from __future__ import annotations

import ipaddress

_MAPPED = 0xFFFF_0000_0000


def ip_to_halves(text: str) -> tuple[int, int]:
    """``"10.0.0.1"`` -> ``(0, 0xFFFF_0A00_0001)``; IPv6 text -> its two 64-bit halves."""
    addr = ipaddress.ip_address(text)
    value = int(addr) | _MAPPED if addr.version == 4 else int(addr)
    return value >> 64, value & 0xFFFF_FFFF_FFFF_FFFF


def halves_to_ip(hi: int, lo: int) -> str:
    """Inverse of :func:`ip_to_halves`: IPv4-mapped addresses print as dotted quads."""
    hi, lo = int(hi), int(lo)
    if hi == 0 and (lo >> 32) == 0xFFFF:
        return str(ipaddress.IPv4Address(lo & 0xFFFF_FFFF))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


# Destination prefixes of channels (`core.channels`): a CDN or round-robin keeps a service's
# IPs in one /24; IPv6 sites get a /48.
PREFIX_V4_BITS = 24
PREFIX_V6_BITS = 48


def prefix_text(hi: int, lo: int) -> str:
    """The prefix of a masked destination (`core.channels.mask_prefix`): "198.51.100.0/24"."""
    hi, lo = int(hi), int(lo)
    bits = PREFIX_V4_BITS if hi == 0 and (lo >> 32) == 0xFFFF else PREFIX_V6_BITS
    return f"{halves_to_ip(hi, lo)}/{bits}"


PROTOCOL_NAMES: dict[int, str] = {1: "icmp", 6: "tcp", 17: "udp", 58: "ipv6-icmp", 132: "sctp"}


def protocol_name(number: int) -> str:
    """ECS ``network.transport`` spelling (lower-case IANA keyword)."""
    return PROTOCOL_NAMES.get(int(number), str(int(number)))
