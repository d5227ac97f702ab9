"""Per-pair state in flat NumPy arrays: one row per (src IP, dst IP, dst port, protocol).

No Python object per pair: a row is a slice of column arrays plus two ring buffers holding the
last ``history_events`` connection start times and sizes. Layout per row (history 32):

    keys        4 x u64   32 B   source hi/lo, destination hi/lo
    port_proto  u32        4 B   dst_port << 8 | proto
    partition   i16        2 B   input partition (source id) the pair's flows arrive on
    first/last_seen_ms, scored_ms, alert_ms, first_alert_ms   5 x i64   40 B
    count, scored_count   2 x u32    8 B
    alerted     5 x f32   20 B   mean interval, score, sleep range of the last alert;
                                 the next period check (alert updates)
    sampling    u16        2 B   highest sampling rate of the pair's flows (1 = unsampled)
    ring_t      H x u32  128 B   connection start, ms after `epoch_ms` (49 days of range)
    ring_b      H x u16   64 B   connection bytes, log-coded (`size_codec`)
    conn        2 x (u16 + 4 x u32)   36 B   last connections (`connections`)
    index       >= 2 x i32 slots  8-16 B   (hash_index; load factor <= 0.5)
    free, used  i32 + bool   5 B
    sketch      3 x u32 x W/max_pairs  12-24 B   prevalence (`prevalence`)
                       ~340-360 B per tracked pair (`bytes_per_pair`, bench/core.py)

Slow beacons need no more room than fast ones: the ring keeps the last H connections whatever
their spacing, so a 4 h beacon's ring spans 5 days and the window (default 24 h), not the ring,
limits what is scored; a 1 s beacon's ring spans the last 32 s, plenty to judge it. The
connection count and first-seen time summarise the whole life of the pair beyond the ring.

Times in the rings are stored relative to a table-wide ``epoch_ms`` to halve their size; when
event time runs 24 days past the epoch the table re-bases (`rebase`), which is rare and cheap.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from beaconwatch.state.connections import CONN_FIELDS, CONN_SLOTS, END, NO_CONNECTION, PIECE, START
from beaconwatch.state.hash_index import EMPTY, remove_row, slots_for
from beaconwatch.state.prevalence import SKETCH_ROWS, add_pair, sketch_width

# Columns of the pair table's `alerted` (f32): what the last alert said, for updates.
ALERTED_MEAN_S = 0  # mean interval
ALERTED_SCORE = 1
ALERTED_LOW_S = 2  # the sleep range the alert described (`scoring.sleep_range`)
ALERTED_HIGH_S = 3
ALERTED_REFINE_AT = 4  # connection count of the next period check, 0 = none (see `state.ingest`)
ALERTED_SIZE = 5

NEVER_MS = np.iinfo(np.int64).min // 2  # "no alert yet": any cooldown has passed since then
REBASE_AFTER_MS = 1 << 31  # re-base ring times once they pass half of the u32 range

U16 = npt.NDArray[np.uint16]
F32 = npt.NDArray[np.float32]
I16 = npt.NDArray[np.int16]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]


class PairTable:
    """Storage for up to ``max_pairs`` pairs; kernels in `ingest.py` and below operate on it."""

    def __init__(self, max_pairs: int, history_events: int) -> None:
        self.max_pairs = max_pairs
        self.history_events = history_events
        self.keys: U64 = np.zeros((max_pairs, 4), dtype=np.uint64)
        self.port_proto: U32 = np.zeros(max_pairs, dtype=np.uint32)
        self.partition: I16 = np.zeros(max_pairs, dtype=np.int16)
        self.first_seen_ms: I64 = np.zeros(max_pairs, dtype=np.int64)
        self.last_seen_ms: I64 = np.zeros(max_pairs, dtype=np.int64)
        self.scored_ms: I64 = np.zeros(max_pairs, dtype=np.int64)
        self.alert_ms: I64 = np.full(max_pairs, NEVER_MS, dtype=np.int64)
        self.first_alert_ms: I64 = np.full(max_pairs, NEVER_MS, dtype=np.int64)
        self.count: U32 = np.zeros(max_pairs, dtype=np.uint32)
        self.scored_count: U32 = np.zeros(max_pairs, dtype=np.uint32)
        self.alerted: F32 = np.zeros((max_pairs, ALERTED_SIZE), dtype=np.float32)
        self.sampling: U16 = np.ones(max_pairs, dtype=np.uint16)  # capped at 65535
        self.ring_t: U32 = np.zeros((max_pairs, history_events), dtype=np.uint32)
        self.ring_b: U16 = np.zeros((max_pairs, history_events), dtype=np.uint16)
        self.conn_port: U16 = np.zeros((max_pairs, CONN_SLOTS), dtype=np.uint16)
        self.conn_times: U32 = np.full(
            (max_pairs, CONN_SLOTS, CONN_FIELDS), NO_CONNECTION, dtype=np.uint32
        )
        self.index: I32 = np.full(slots_for(max_pairs), EMPTY, dtype=np.int32)
        # Free rows as a stack; rows are handed out from the top. `used` marks live rows.
        self.free: I32 = np.arange(max_pairs - 1, -1, -1, dtype=np.int32)
        self.used = np.zeros(max_pairs, dtype=np.bool_)
        self.sketch: U32 = np.zeros((SKETCH_ROWS, sketch_width(max_pairs)), dtype=np.uint32)
        # meta[0] = free-stack size, meta[1] = epoch_ms (ring times are relative to it),
        # meta[2] = non-empty source buckets of the prevalence sketch.
        self.meta: I64 = np.array([max_pairs, 0, 0], dtype=np.int64)

    @property
    def tracked_pairs(self) -> int:
        return self.max_pairs - int(self.meta[0])

    @property
    def epoch_ms(self) -> int:
        return int(self.meta[1])

    @property
    def nbytes(self) -> int:
        arrays = (
            self.keys, self.port_proto, self.partition, self.first_seen_ms, self.last_seen_ms,
            self.scored_ms, self.alert_ms, self.first_alert_ms, self.count, self.scored_count,
            self.alerted, self.sampling, self.ring_t, self.ring_b, self.conn_port,
            self.conn_times, self.index, self.free, self.used, self.sketch,
        )  # fmt: skip
        return sum(a.nbytes for a in arrays)

    @property
    def bytes_per_pair(self) -> float:
        """Memory per tracked pair at full capacity (all arrays are allocated up front)."""
        return self.nbytes / self.max_pairs

    def set_epoch(self, epoch_ms: int) -> None:
        self.meta[1] = epoch_ms

    def rebase(self, new_epoch_ms: int) -> None:
        """Move the epoch forward; ring times older than the new epoch clamp to it.

        Callers pick ``new_epoch_ms`` at or before the oldest time any window can still need,
        so clamped entries are outside every window.
        """
        delta = new_epoch_ms - self.epoch_ms
        if delta <= 0:
            return
        ring = self.ring_t.astype(np.int64) - delta
        np.clip(ring, 0, None, out=ring)
        self.ring_t[:] = ring.astype(np.uint32)
        for column in (START, END, PIECE):
            times = self.conn_times[:, :, column]
            empty = times == NO_CONNECTION
            shifted = np.clip(times.astype(np.int64) - delta, 0, None).astype(np.uint32)
            self.conn_times[:, :, column] = np.where(empty, NO_CONNECTION, shifted)
        self.meta[1] = new_epoch_ms

    def evict_idle(self, cutoff_ms: int) -> int:
        """Drop pairs whose last connection is older than ``cutoff_ms``; returns how many."""
        return int(
            _evict_where(self.index, self.keys, self.port_proto, self.free, self.used, self.meta,
                         self.sketch, self.last_seen_ms < cutoff_ms)
        )  # fmt: skip

    def drop_partitions(self, partitions: list[int]) -> int:
        """Drop the pairs of the given Kafka partitions (revoked in a rebalance)."""
        if not partitions:
            return 0
        mask = np.isin(self.partition, np.asarray(partitions, dtype=np.int16))
        return int(
            _evict_where(self.index, self.keys, self.port_proto, self.free, self.used, self.meta,
                         self.sketch, mask)
        )  # fmt: skip


@njit(cache=True, nogil=True)
def release_row(
    index: I32, keys: U64, port_proto: U32, free: I32, used: npt.NDArray[np.bool_],
    meta: I64, sketch: U32, row: int,
) -> None:  # fmt: skip
    add_pair(sketch, meta, keys, port_proto[row], row, -1)
    remove_row(index, keys, port_proto, row)
    used[row] = False
    free[meta[0]] = row
    meta[0] += 1


@njit(cache=True, nogil=True)
def _evict_where(
    index: I32, keys: U64, port_proto: U32, free: I32, used: npt.NDArray[np.bool_],
    meta: I64, sketch: U32, mask: npt.NDArray[np.bool_],
) -> int:  # fmt: skip
    evicted = 0
    for row in range(used.shape[0]):
        if used[row] and mask[row]:
            release_row(index, keys, port_proto, free, used, meta, sketch, row)
            evicted += 1
    return evicted


@njit(cache=True, nogil=True)
def evict_least_recent(
    index: I32, keys: U64, port_proto: U32, free: I32, used: npt.NDArray[np.bool_],
    meta: I64, sketch: U32, last_seen_ms: I64, how_many: int,
) -> int:  # fmt: skip
    """Evict (at least) the ``how_many`` least recently seen pairs, in one O(rows) pass.

    Evicting a slice at once instead of one pair per insert keeps the cost of a full table
    amortised to a few nanoseconds per new pair.
    """
    n = used.shape[0]
    seen = np.empty(n, dtype=np.int64)
    big = np.iinfo(np.int64).max
    for row in range(n):
        seen[row] = last_seen_ms[row] if used[row] else big
    k = min(how_many, n) - 1
    threshold = np.partition(seen, k)[k]
    evicted = 0
    for row in range(n):
        if used[row] and last_seen_ms[row] <= threshold and evicted < how_many:
            release_row(index, keys, port_proto, free, used, meta, sketch, row)
            evicted += 1
    return evicted
