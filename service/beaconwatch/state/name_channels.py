"""Which name channels are promoted: the trigger of the name pass (`core.detector`).

A (source, destination name, port, protocol) channel costs a row of its own (`state.levels`:
NAME_LEVEL, the name's hash as the destination key) only once the source has reached the name
at a second destination IP: C2 behind a CDN with many edges, whose IPs span many /24s, so
neither the exact pair nor the prefix channel sees it. Until then a named flow costs a hash
and a look at one bucket here, and no row; an unnamed flow costs nothing.

Entries are keyed by the channel's hash (not by a table row, so growing or restoring the table
needs nothing here) in buckets of WAYS, and hold the last destination IP, how often it changed
and when the channel was last seen; a full bucket gives up its least recently seen entry (the
channel is promoted again at its next IP change). At promotion the name row starts empty: the
first IP's flows before it are the exact pair's, and a C2 that rotates per check-in loses one.

    tags[e]     key hash (0 = empty)
    dst[e]      last destination (hi, lo)
    changes[e]  destination IP changes seen (0: not promoted)
    seen_ms[e]  last flow's start
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import I64, U8, U32, U64
from beaconwatch.state.hash_index import key_hash
from beaconwatch.state.levels import NAME_LEVEL_U32, PORT_PROTO_MASK_U32

WAYS = 4
_EMPTY = np.uint64(0)


def name_slots(capacity: int) -> int:
    """Entries for a table of ``capacity`` rows (a power of two, 32 bytes each)."""
    return 1 << max(4, int(capacity - 1).bit_length())


@njit(cache=True, nogil=True, inline="always")
def channel_hash(src_hi: np.uint64, src_lo: np.uint64, name: np.uint64, pp: np.uint32) -> np.uint64:
    """The channel's key hash (the name row's own key: destination (name, 0), NAME_LEVEL)."""
    h = key_hash(src_hi, src_lo, name, np.uint64(0), np.uint32(pp | NAME_LEVEL_U32))
    return h if h != _EMPTY else np.uint64(1)


@njit(cache=True, nogil=True, inline="always")
def _entry(tags: U64, seen_ms: I64, h: np.uint64) -> tuple[int, bool]:
    """(position, found): the channel's entry, else the place to put it (empty or LRU)."""
    base = int(h & np.uint64(tags.shape[0] - 1)) & ~(WAYS - 1)
    pos, oldest_ms = base, np.iinfo(np.int64).max
    for j in range(WAYS):
        if tags[base + j] == h:
            return base + j, True
        if tags[base + j] == _EMPTY:
            if oldest_ms != np.iinfo(np.int64).min:
                pos, oldest_ms = base + j, np.iinfo(np.int64).min
        elif seen_ms[base + j] < oldest_ms:
            pos, oldest_ms = base + j, seen_ms[base + j]
    return pos, False


@njit(cache=True, nogil=True)
def route_names(
    tags: U64, dst: U64, changes: U32, seen_ms: I64, start_ms: I64, src_hi: U64, src_lo: U64,
    dst_hi: U64, dst_lo: U64, dst_port: np.ndarray, proto: U8, name: U64, feed: U8,
) -> int:  # fmt: skip
    """For named flows in order: ``feed[i]`` = 1 when flow i belongs to a promoted channel
    (the name pass's input), promoting a channel at its first change of destination IP.
    Returns how many were fed."""
    fed = 0
    for i in range(start_ms.shape[0]):
        pp = np.uint32((np.uint32(dst_port[i]) << np.uint32(8)) | np.uint32(proto[i]))
        h = channel_hash(src_hi[i], src_lo[i], name[i], pp)
        e, found = _entry(tags, seen_ms, h)
        if not found:
            tags[e] = h
            dst[e, 0], dst[e, 1] = dst_hi[i], dst_lo[i]
            changes[e] = 0
            seen_ms[e] = start_ms[i]
            continue
        if dst[e, 0] != dst_hi[i] or dst[e, 1] != dst_lo[i]:
            dst[e, 0], dst[e, 1] = dst_hi[i], dst_lo[i]
            changes[e] = min(changes[e] + np.uint32(1), np.uint32(0xFFFF_FFFF))
        seen_ms[e] = max(seen_ms[e], start_ms[i])
        if changes[e] > 0:
            feed[i] = 1
            fed += 1
    return fed


@njit(cache=True, nogil=True)
def _restore(
    tags: U64, dst: U64, changes: U32, seen_ms: I64, keys: U64, port_proto: U32, used: np.ndarray,
    last_seen_ms: I64,
) -> None:  # fmt: skip
    for row in range(used.shape[0]):
        if used[row] and (port_proto[row] & NAME_LEVEL_U32) != 0:
            pp = port_proto[row] & PORT_PROTO_MASK_U32
            h = channel_hash(keys[row, 0], keys[row, 1], keys[row, 2], pp)
            e, found = _entry(tags, seen_ms, h)
            if not found:
                tags[e] = h
                dst[e, 0], dst[e, 1] = np.uint64(0), np.uint64(0)  # the next flow's is news
                changes[e] = 1
                seen_ms[e] = last_seen_ms[row]


class NameChannels:
    """The promotion index of one partition's name channels (module doc)."""

    def __init__(self, capacity: int) -> None:
        slots = name_slots(capacity)
        self.tags: U64 = np.zeros(slots, dtype=np.uint64)
        self.dst: U64 = np.zeros((slots, 2), dtype=np.uint64)
        self.changes: U32 = np.zeros(slots, dtype=np.uint32)
        self.seen_ms: I64 = np.zeros(slots, dtype=np.int64)
        # Whether any name row may exist in the table: no flow fed one yet (and none
        # restored) means none does, and a pair alert need not look for its source's.
        self.active = False

    @property
    def nbytes(self) -> int:
        return self.tags.nbytes + self.dst.nbytes + self.changes.nbytes + self.seen_ms.nbytes

    def route(
        self, start_ms: I64, src_hi: U64, src_lo: U64, dst_hi: U64, dst_lo: U64,
        dst_port: np.ndarray, proto: U8, name: U64,
    ) -> U8:  # fmt: skip
        """Per named flow (in order), 1 when it feeds its channel's name row (`route_names`)."""
        feed = np.zeros(start_ms.shape[0], dtype=np.uint8)
        route_names(
            self.tags, self.dst, self.changes, self.seen_ms, start_ms, src_hi, src_lo, dst_hi,
            dst_lo, dst_port, proto, name, feed,
        )  # fmt: skip
        if not self.active and feed.any():
            self.active = True
        return feed

    def restore(self, keys: U64, port_proto: U32, used: np.ndarray, last_seen_ms: I64) -> None:
        """Promote the channels of the table's name rows (restored from a snapshot): their
        next flows feed them; the last IP is not known until then."""
        _restore(self.tags, self.dst, self.changes, self.seen_ms, keys, port_proto, used,
                 last_seen_ms)  # fmt: skip
        self.active = bool(self.tags.any())

    def latest(self, src: tuple[int, int], name: int, pp: int) -> tuple[tuple[int, int], int]:
        """(last destination (hi, lo), IPs reached counted as changes + 1) of a channel;
        ((0, 0), 0) when it is not indexed."""
        # np.uint64 again: numba hands a uint64 back to Python as an int.
        h = np.uint64(
            channel_hash(np.uint64(src[0]), np.uint64(src[1]), np.uint64(name), np.uint32(pp))
        )
        e, found = _entry(self.tags, self.seen_ms, h)
        if not found:
            return (0, 0), 0
        return (int(self.dst[e, 0]), int(self.dst[e, 1])), int(self.changes[e]) + 1
