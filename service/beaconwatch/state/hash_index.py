"""Open-addressing hash index from a pair key to a row of the pair table (numba).

Linear probing over a power-of-two ``int32`` slot array (-1 = empty) sized to at least twice the
row capacity, so probes stay short. Deletion uses backward shifting instead of tombstones: a
long-running service inserts and evicts millions of pairs, and tombstones would slowly fill the
index and make every miss scan to the end of a cluster.

A key is five integers: source (hi, lo), destination (hi, lo) and ``dst_port << 8 | proto``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import I32, U32, U64

EMPTY = np.int32(-1)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX = np.uint64(0xBF58476D1CE4E5B9)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)


def slots_for(capacity: int) -> int:
    """Power-of-two slot count with load factor <= 0.5."""
    return 1 << max(4, int(2 * capacity - 1).bit_length())


@njit(cache=True, nogil=True, inline="always")
def _fold(h: np.uint64, v: np.uint64) -> np.uint64:
    # splitmix64 finaliser over a running xor; good avalanche for clustered IP addresses.
    z = (h ^ v) * _GOLDEN
    z = (z ^ (z >> _S30)) * _MIX
    return z ^ (z >> _S27)


@njit(cache=True, nogil=True)
def key_hash(
    src_hi: np.uint64,
    src_lo: np.uint64,
    dst_hi: np.uint64,
    dst_lo: np.uint64,
    port_proto: np.uint32,
) -> np.uint64:
    h = _fold(np.uint64(0), src_hi)
    h = _fold(h, src_lo)
    h = _fold(h, dst_hi)
    h = _fold(h, dst_lo)
    h = _fold(h, np.uint64(port_proto))
    return h ^ (h >> _S31)


@njit(cache=True, nogil=True)
def row_hash(keys: U64, port_proto: U32, row: int) -> np.uint64:
    return key_hash(keys[row, 0], keys[row, 1], keys[row, 2], keys[row, 3], port_proto[row])


@njit(cache=True, nogil=True)
def find_slot(
    index: I32,
    keys: U64,
    port_proto: U32,
    h: np.uint64,
    src_hi: np.uint64,
    src_lo: np.uint64,
    dst_hi: np.uint64,
    dst_lo: np.uint64,
    pp: np.uint32,
) -> int:
    """Slot holding the key, or the empty slot where it would be inserted."""
    mask = index.shape[0] - 1
    slot = np.int64(h & np.uint64(mask))
    while True:
        row = index[slot]
        if row == EMPTY:
            return int(slot)
        if (
            keys[row, 1] == src_lo
            and keys[row, 3] == dst_lo
            and port_proto[row] == pp
            and keys[row, 0] == src_hi
            and keys[row, 2] == dst_hi
        ):
            return int(slot)
        slot = (slot + 1) & mask


@njit(cache=True, nogil=True)
def remove_row(index: I32, keys: U64, port_proto: U32, row: int) -> None:
    """Remove ``row`` from the index, shifting later members of its cluster back."""
    mask = index.shape[0] - 1
    hole = np.int64(row_hash(keys, port_proto, row) & np.uint64(mask))
    while index[hole] != row:
        hole = (hole + 1) & mask
    probe = hole
    while True:
        probe = (probe + 1) & mask
        other = index[probe]
        if other == EMPTY:
            break
        home = np.int64(row_hash(keys, port_proto, other) & np.uint64(mask))
        # `other` may move into the hole only if its home slot is not cyclically in (hole, probe].
        if hole <= probe:
            stays = hole < home <= probe
        else:
            stays = home > hole or home <= probe
        if not stays:
            index[hole] = other
            hole = probe
    index[hole] = EMPTY
