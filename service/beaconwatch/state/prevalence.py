"""Prevalence: how many internal sources talk to a destination, in bounded memory (numba).

Fleet-wide polling (update checks, telemetry, monitoring) is periodic but benign, and it is
periodic on many hosts at once; a C2 server is usually contacted by one or a few. Two sketches,
both kept exact under deletion because they count *tracked pairs*, which are added and evicted:

- destinations (IP, port, protocol): a count-min sketch of 2 rows; a destination's estimate
  is the smaller of its two counters, i.e. how many tracked pairs (= distinct sources) reach it.
  Collisions can only over-count, and need a collision in both rows.
- sources: a linear-counting bitmap of per-bucket counters; the number of distinct internal
  sources with any tracked pair is estimated from the share of empty buckets.
- fan-out (source, protocol, 16-port block of a destination port >= 1024): a count-min sketch
  of 2 rows; how many tracked pairs (= distinct destinations) a source keeps in that block.
  One BitTorrent host keeping dozens of peers on 6881-6889 alive on one rhythm is one fan-out,
  not dozens of beacons (`state.ingest`). Service ports (< 1024) are not counted: a browsing
  host reaches hundreds of destinations on 443, and its C2 on 443 must not hide among them.

Width W is a power of two >= max_pairs, so at full load the expected error of each row is about
one pair. Memory: 5 x W x 4 bytes, i.e. 20-40 bytes per tracked pair.

The sketches are additive: a process's `Prevalence` is the sum of its partitions'
contributions, each one exactly the pairs that partition tracks. So a partition's part never
needs to be stored: it is added from its rows when its state is restored and subtracted when
the partition is dropped (`PairTable.count_into`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from beaconwatch.domain.dtypes import I64, U32
from beaconwatch.state.hash_index import key_hash
from beaconwatch.state.levels import LEVEL_BITS_U32, PORT_PROTO_MASK_U32

SKETCH_ROWS = 5  # rows 0, 1: destination count-min; 2: source counters; 3, 4: fan-out
_SALT = np.uint64(0x5851_F42D_4C95_7F2D)
_FANOUT_SALT = np.uint64(0x2545_F491_4F6C_DD1D)
FANOUT_MIN_PORT = 1024
FANOUT_PORT_BLOCK = 16


def sketch_width(max_pairs: int) -> int:
    return 1 << max(4, int(max_pairs - 1).bit_length())


class Prevalence:
    """The sketches of every pair a process tracks, shared by its partitions' tables."""

    def __init__(self, max_pairs: int) -> None:
        self.sketch: U32 = np.zeros((SKETCH_ROWS, sketch_width(max_pairs)), dtype=np.uint32)
        self.nonzero: I64 = np.zeros(1, dtype=np.int64)  # non-empty source buckets

    @property
    def nbytes(self) -> int:
        return int(self.sketch.nbytes + self.nonzero.nbytes)


@njit(cache=True, nogil=True, inline="always")
def _dest_buckets(
    dst_hi: np.uint64, dst_lo: np.uint64, pp: np.uint32, width: int
) -> tuple[np.int64, np.int64]:
    h = key_hash(np.uint64(0), np.uint64(0), dst_hi, dst_lo, pp)
    mask = np.uint64(width - 1)
    return np.int64(h & mask), np.int64((h >> np.uint64(32)) & mask)


@njit(cache=True, nogil=True, inline="always")
def _source_bucket(src_hi: np.uint64, src_lo: np.uint64, width: int) -> np.int64:
    h = key_hash(src_hi, src_lo, _SALT, _SALT, np.uint32(0))
    return np.int64(h & np.uint64(width - 1))


@njit(cache=True, nogil=True, inline="always")
def _fanout_buckets(
    src_hi: np.uint64, src_lo: np.uint64, pp: np.uint32, width: int
) -> tuple[np.int64, np.int64]:
    """Buckets of (source, protocol, port block); (-1, -1) for a service port, and for a
    prefix or name row (`state.levels`): fan-out counts destinations, which its exact rows
    already do."""
    port = pp >> np.uint32(8)
    if port < FANOUT_MIN_PORT or (pp & LEVEL_BITS_U32) != 0:
        return np.int64(-1), np.int64(-1)
    block = ((port // np.uint32(FANOUT_PORT_BLOCK)) << np.uint32(8)) | (pp & np.uint32(0xFF))
    h = key_hash(src_hi, src_lo, _FANOUT_SALT, _FANOUT_SALT, np.uint32(block))
    mask = np.uint64(width - 1)
    return np.int64(h & mask), np.int64((h >> np.uint64(32)) & mask)


@njit(cache=True, nogil=True)
def add_pair(sketch: U32, nonzero: I64, keys: npt.NDArray[np.uint64], pp: np.uint32, row: int,
             delta: int) -> None:  # fmt: skip
    """Count a tracked pair in (delta = 1) or out (delta = -1)."""
    width = sketch.shape[1]
    a, b = _dest_buckets(keys[row, 2], keys[row, 3], pp, width)
    s = _source_bucket(keys[row, 0], keys[row, 1], width)
    f, g = _fanout_buckets(keys[row, 0], keys[row, 1], pp, width)
    if delta > 0:
        sketch[0, a] += np.uint32(1)
        sketch[1, b] += np.uint32(1)
        if sketch[2, s] == 0:
            nonzero[0] += 1
        sketch[2, s] += np.uint32(1)
        if f >= 0:
            sketch[3, f] += np.uint32(1)
            sketch[4, g] += np.uint32(1)
    else:
        sketch[0, a] -= np.uint32(1)
        sketch[1, b] -= np.uint32(1)
        sketch[2, s] -= np.uint32(1)
        if sketch[2, s] == 0:
            nonzero[0] -= 1
        if f >= 0:
            sketch[3, f] -= np.uint32(1)
            sketch[4, g] -= np.uint32(1)


@njit(cache=True, nogil=True)
def destination_sources(sketch: U32, dst_hi: np.uint64, dst_lo: np.uint64, pp: np.uint32) -> int:
    """Distinct tracked sources of a destination (exact unless both rows collide)."""
    a, b = _dest_buckets(dst_hi, dst_lo, pp, sketch.shape[1])
    return int(min(sketch[0, a], sketch[1, b]))


@njit(cache=True, nogil=True)
def fleet_sources(sketch: U32, nonzero: I64) -> float:
    """Estimated distinct internal sources with tracked pairs (linear counting)."""
    width = sketch.shape[1]
    filled = nonzero[0]
    if filled >= width:
        return float(width)
    return float(-width * np.log(1.0 - filled / width))


@njit(cache=True, nogil=True)
def source_fanout(sketch: U32, src_hi: np.uint64, src_lo: np.uint64, pp: np.uint32) -> int:
    """Distinct tracked destinations of the source in the port block of ``pp`` (0 for a
    service port: not counted). A prefix row reads its exact rows' fan-out."""
    f, g = _fanout_buckets(src_hi, src_lo, pp & PORT_PROTO_MASK_U32, sketch.shape[1])
    if f < 0:
        return 0
    return int(min(sketch[3, f], sketch[4, g]))


@njit(cache=True, nogil=True)
def pair_prevalence(
    sketch: U32, nonzero: I64, keys: npt.NDArray[np.uint64], port_proto: U32, row: int
) -> tuple[int, float]:
    """(distinct sources of the row's destination, distinct sources of the fleet): what
    `alerting.policy.prevalence` down-ranks by."""
    sources = destination_sources(sketch, keys[row, 2], keys[row, 3], port_proto[row])
    return sources, fleet_sources(sketch, nonzero)


@njit(cache=True, nogil=True)
def pair_fanout(sketch: U32, keys: npt.NDArray[np.uint64], port_proto: U32, row: int) -> int:
    """The row's source's fan-out in the port block of its destination port."""
    return source_fanout(sketch, keys[row, 0], keys[row, 1], port_proto[row])
