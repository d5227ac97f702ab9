"""Levels of a pair-table row: the exact pair, a destination-prefix channel, a name channel.

A prefix row is keyed like a pair but with the destination masked to its /24 (IPv4) or /48
(IPv6) and this bit set in its ``port_proto`` (above the 24 bits of port << 8 | protocol), so
prefix rows never collide with exact rows and are scored by the same kernels (`core.channels`).
A name row (`state.name_channels`) has the destination name's hash (`domain.names`) as its
destination (hi = hash, lo = 0) and NAME_LEVEL set instead.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.domain.addresses import PREFIX_V4_BITS, PREFIX_V6_BITS
from beaconwatch.domain.flows import IPV4_MAPPED_PREFIX

V4_MASK = np.uint64(~((1 << (32 - PREFIX_V4_BITS)) - 1) & 0xFFFF_FFFF_FFFF_FFFF)
V6_MASK = np.uint64(~((1 << (64 - PREFIX_V6_BITS)) - 1) & 0xFFFF_FFFF_FFFF_FFFF)
_HIGH32 = np.uint64(0xFFFF_FFFF_0000_0000)

PREFIX_LEVEL = 1 << 31
NAME_LEVEL = 1 << 30
LEVEL_BITS = PREFIX_LEVEL | NAME_LEVEL
PORT_PROTO_MASK = 0x00FF_FFFF  # port << 8 | protocol, without the level bit
PREFIX_LEVEL_U32 = np.uint32(PREFIX_LEVEL)
PORT_PROTO_MASK_U32 = np.uint32(PORT_PROTO_MASK)
NAME_LEVEL_U32 = np.uint32(NAME_LEVEL)
LEVEL_BITS_U32 = np.uint32(LEVEL_BITS)


@njit(cache=True, nogil=True, inline="always")
def mask_destination(hi: np.uint64, lo: np.uint64) -> tuple[np.uint64, np.uint64]:
    """A destination's (hi, lo) halves masked to its /24 (IPv4-mapped) or /48 (IPv6)."""
    if hi == 0 and (lo & _HIGH32) == IPV4_MAPPED_PREFIX:
        return hi, lo & V4_MASK
    return hi & V6_MASK, np.uint64(0)
