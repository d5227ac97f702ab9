"""Levels of a pair-table row: the exact pair, or a destination-prefix channel.

A prefix row is keyed like a pair but with the destination masked to its /24 (IPv4) or /48
(IPv6) and this bit set in its ``port_proto`` (above the 24 bits of port << 8 | protocol), so
prefix rows never collide with exact rows and are scored by the same kernels (`core.channels`).
"""

from __future__ import annotations

import numpy as np

PREFIX_LEVEL = 1 << 31
PORT_PROTO_MASK = 0x00FF_FFFF  # port << 8 | protocol, without the level bit
PREFIX_LEVEL_U32 = np.uint32(PREFIX_LEVEL)
PORT_PROTO_MASK_U32 = np.uint32(PORT_PROTO_MASK)
