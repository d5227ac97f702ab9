"""Which prefix channels are promoted: the cheap trigger of the prefix pass (`core.channels`).

A (source, destination /24 or /48, port, protocol) channel costs a row of its own (a ring of
times and sizes) only once the source has reached a second destination IP in it. Until then
the exact pass (`state.ingest`) remembers, per channel, the row of the one exact pair it saw:
a flow of that pair costs a hash and a look at one bucket of this index, and no row. A flow
to another IP of the channel promotes it: its prefix row starts as a copy of that pair's row
(the history before the promotion, so a CDN rotating per check-in loses none of it), the
bucket then holds the prefix row, and every later flow of the channel feeds it.

Buckets of WAYS int64 entries (32 bytes, within one cache line) are picked by the hash of the
prefix key (the prefix row's own hash-index key); each entry is a row number tagged with 31
more bits of that hash, so other channels' entries are told apart without reading their rows.
An entry is trusted only while its row still holds a pair of the channel (`same_channel`), so
eviction and row reuse need no bookkeeping here; a full bucket gives up its least recently
seen entry, and at worst a channel forgets its first IP and is promoted one IP later.

    entry = tag << 33 | pending << 32 | row     (EMPTY = -1)
    row       the channel's one exact pair so far, or its prefix row
    pending   1: promoted in this batch from exact row ``row``, its prefix row not made yet
              (no free row: the prefix pass makes it, evicting)
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import BOOL, I32, I64, U32, U64
from beaconwatch.state.hash_index import EMPTY as NO_ROW
from beaconwatch.state.hash_index import find_slot, key_hash
from beaconwatch.state.levels import (
    NAME_LEVEL_U32,
    PORT_PROTO_MASK_U32,
    PREFIX_LEVEL_U32,
    mask_destination,
)
from beaconwatch.state.prevalence import add_pair
from beaconwatch.state.table_columns import TableColumns

WAYS = 4
EMPTY = np.int64(-1)
NOT_FED = -1  # `route`: the channel has one IP so far
FED = -2  # `route`: the channel is promoted; otherwise the exact row to promote it from
_ROW = np.int64(0xFFFF_FFFF)
_PENDING = np.int64(1 << 32)


def channel_slots(capacity: int) -> int:
    """Entries for a table of ``capacity`` rows: one per row at least, a power of two (8-16
    bytes a row)."""
    return 1 << max(4, int(capacity - 1).bit_length())


@njit(cache=True, nogil=True, inline="always")
def bucket_of(channels: I64, h: np.uint64) -> int:
    return int(h & np.uint64(channels.shape[0] - 1)) & ~(WAYS - 1)


@njit(cache=True, nogil=True, inline="always")
def tagged(h: np.uint64, row: int) -> np.int64:
    """The entry of ``row`` in the bucket of hash ``h``."""
    return np.int64((h >> np.uint64(33)) << np.uint64(33)) | np.int64(row)


@njit(cache=True, nogil=True, inline="always")
def listed(channels: I64, base: int, entry: np.int64) -> bool:
    """Whether the bucket holds ``entry`` (`tagged`): the ordinary case, a channel's one
    pair (or its prefix row) again, told from the bucket alone."""
    return bool(
        channels[base] == entry
        or channels[base + 1] == entry
        or channels[base + 2] == entry
        or channels[base + 3] == entry
    )


@njit(cache=True, nogil=True, inline="always")
def same_channel(
    keys: U64, port_proto: U32, used: BOOL, row: int, src_hi: np.uint64, src_lo: np.uint64,
    net_hi: np.uint64, net_lo: np.uint64, pp: np.uint32,
) -> bool:  # fmt: skip
    """Whether ``row`` holds a pair (or the prefix row) of the channel; ``pp`` without the
    level bit."""
    if not used[row] or keys[row, 1] != src_lo or keys[row, 0] != src_hi:
        return False
    if (port_proto[row] & PORT_PROTO_MASK_U32) != pp:
        return False
    hi, lo = mask_destination(keys[row, 2], keys[row, 3])
    return bool(hi == net_hi and lo == net_lo)


@njit(cache=True, nogil=True, inline="always")
def _claim(
    channels: I64, base: int, port_proto: U32, used: BOOL, last_seen_ms: I64, entry: np.int64
) -> None:  # fmt: skip
    """Put ``entry`` in the bucket: an empty place, else the least recently seen row's, an
    exact pair's before a prefix row's (forgetting a first IP only delays a promotion)."""
    pos = base
    oldest_level, oldest_ms = 2, np.iinfo(np.int64).max
    for j in range(WAYS):
        e = channels[base + j]
        if e == EMPTY:
            pos = base + j
            break
        r = e & _ROW
        level, seen_ms = 0, np.iinfo(np.int64).min  # a row evicted since: forgotten first
        if used[r]:
            level = 1 if (port_proto[r] & PREFIX_LEVEL_U32) != 0 else 0
            seen_ms = last_seen_ms[r]
        if level < oldest_level or (level == oldest_level and seen_ms < oldest_ms):
            oldest_level, oldest_ms = level, seen_ms
            pos = base + j
    channels[pos] = entry


@njit(cache=True, nogil=True)
def route(
    channels: I64, index: I32, keys: U64, port_proto: U32, used: BOOL, last_seen_ms: I64,
    h: np.uint64, row: int, src_hi: np.uint64, src_lo: np.uint64, net_hi: np.uint64,
    net_lo: np.uint64, pp: np.uint32,
) -> tuple[int, int]:  # fmt: skip
    """For the exact pass, a flow of exact row ``row`` in the channel whose prefix key hashes
    to ``h``, which the bucket does not list (`listed`): (FED, entry) once the channel is
    promoted, (the exact row to promote from, its entry) at a second IP, else (NOT_FED, -1),
    the channel's first pair (the bucket lists it from now on). A channel the bucket lost
    (full) is looked up in the table's own index: its prefix row, if any, is listed again."""
    base = bucket_of(channels, h)
    tag = tagged(h, 0)
    for j in range(WAYS):
        e = channels[base + j]
        if e == EMPTY or (e & ~(_ROW | _PENDING)) != tag:
            continue
        r = int(e & _ROW)
        if same_channel(keys, port_proto, used, r, src_hi, src_lo, net_hi, net_lo, pp):
            if (e & _PENDING) != 0 or (port_proto[r] & PREFIX_LEVEL_U32) != 0:
                return FED, base + j
            return r, base + j
    prefix = index[find_slot(index, keys, port_proto, h, src_hi, src_lo, net_hi, net_lo,
                             pp | PREFIX_LEVEL_U32)]  # fmt: skip
    _claim(
        channels,
        base,
        port_proto,
        used,
        last_seen_ms,
        tagged(h, prefix if prefix != NO_ROW else row),
    )
    if prefix != NO_ROW:
        return FED, -1
    return NOT_FED, -1


@njit(cache=True, nogil=True)
def register(
    channels: I64, keys: U64, port_proto: U32, used: BOOL, last_seen_ms: I64, h: np.uint64,
    row: int,
) -> None:  # fmt: skip
    """For the prefix pass: prefix row ``row`` (hash ``h``), not `listed`, stands for its
    channel from now on."""
    base = bucket_of(channels, h)
    tag = tagged(h, 0)
    pp = port_proto[row] & PORT_PROTO_MASK_U32
    for j in range(WAYS):
        e = channels[base + j]
        if e != EMPTY and (e & ~(_ROW | _PENDING)) == tag and same_channel(
            keys, port_proto, used, int(e & _ROW), keys[row, 0], keys[row, 1], keys[row, 2],
            keys[row, 3], pp,
        ):  # fmt: skip
            channels[base + j] = tagged(h, row)
            return
    _claim(channels, base, port_proto, used, last_seen_ms, tagged(h, row))


@njit(cache=True, nogil=True)
def rebuild(channels: I64, keys: U64, port_proto: U32, used: BOOL) -> None:
    """Index the table's rows anew (grown, or restored from a snapshot): each channel's
    prefix row, else one of its exact pairs (a channel with two then promotes at its next
    flow to another IP)."""
    channels[:] = EMPTY
    for prefix_rows in (True, False):
        for row in range(used.shape[0]):
            if not used[row] or ((port_proto[row] & PREFIX_LEVEL_U32) != 0) != prefix_rows:
                continue
            if (port_proto[row] & NAME_LEVEL_U32) != 0:  # a name channel (`name_channels`)
                continue
            pp = port_proto[row] & PORT_PROTO_MASK_U32
            net_hi, net_lo = mask_destination(keys[row, 2], keys[row, 3])
            h = key_hash(keys[row, 0], keys[row, 1], net_hi, net_lo, pp | PREFIX_LEVEL_U32)
            base = bucket_of(channels, h)
            tag = tagged(h, 0)
            empty = -1
            for j in range(WAYS):
                e = channels[base + j]
                if e == EMPTY:
                    empty = base + j if empty < 0 else empty
                elif (e & ~(_ROW | _PENDING)) == tag and same_channel(
                    keys, port_proto, used, int(e & _ROW), keys[row, 0], keys[row, 1], net_hi,
                    net_lo, pp,
                ):  # fmt: skip
                    empty = -2  # known: its prefix row, or another of its pairs
                    break
            if empty >= 0:  # a full bucket keeps the rows it has (prefix rows came first)
                channels[empty] = tagged(h, row)


@njit(cache=True, nogil=True)
def seed_prefix_row(
    tb: TableColumns, sketch: U32, nonzero: I64, entry: int, source: int, h: np.uint64,
    src_hi: np.uint64, src_lo: np.uint64, net_hi: np.uint64, net_lo: np.uint64, pp: np.uint32,
    never_ms: int,
) -> None:  # fmt: skip
    """Promote the channel of bucket entry ``entry`` at a second IP: its prefix row (key
    hash ``h``, ``pp`` with the level bit) starts as a copy of exact row ``source``, the
    channel's history so far, without its alerts; with no free row, the prefix pass makes
    an empty one (evicting), and the entry says so."""
    slot = find_slot(tb.hash_slots, tb.keys, tb.port_proto, h, src_hi, src_lo, net_hi, net_lo, pp)
    if tb.hash_slots[slot] != NO_ROW:  # its prefix row outlived the entry (a full bucket)
        tb.channels[entry] = tagged(h, tb.hash_slots[slot])
        return
    if tb.meta[0] == 0:
        tb.channels[entry] = tagged(h, source) | _PENDING
        return
    tb.meta[0] -= 1
    row = tb.free[tb.meta[0]]
    tb.used[row] = True
    tb.hash_slots[slot] = row
    tb.keys[row, 0], tb.keys[row, 1], tb.keys[row, 2], tb.keys[row, 3] = (
        src_hi,
        src_lo,
        net_hi,
        net_lo,
    )
    tb.port_proto[row] = pp
    for column in (tb.first_seen_ms, tb.last_seen_ms, tb.scored_ms):
        column[row] = column[source]
    tb.n_connections[row] = tb.n_connections[source]
    tb.scored_count[row] = tb.scored_count[source]
    tb.sampling[row] = tb.sampling[source]
    tb.direction_inferred[row] = tb.direction_inferred[source]
    tb.ring_t[row, :] = tb.ring_t[source, :]
    tb.ring_b[row, :] = tb.ring_b[source, :]
    tb.conn_port[row, :] = tb.conn_port[source, :]
    tb.conn_times[row, :, :] = tb.conn_times[source, :, :]
    tb.alert_ms[row] = never_ms
    tb.first_alert_ms[row] = never_ms
    tb.alerted[row, :] = 0.0
    tb.long_alert_ms[row] = never_ms
    tb.long_sessions[row] = 0
    add_pair(sketch, nonzero, tb.keys, pp, row, 1)
    tb.channels[entry] = tagged(h, row)
