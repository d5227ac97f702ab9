"""Per-pair state in flat NumPy arrays: one row per (src IP, dst IP, dst port, protocol).

No Python object per pair: a row is a slice of column arrays plus two ring buffers holding the
last ``history_events`` connection start times and sizes. Layout per row (history 32):

    keys        4 x u64   32 B   source hi/lo, destination hi/lo
    port_proto  u32        4 B   dst_port << 8 | proto
    first/last_seen_ms, scored_ms, alert_ms, first_alert_ms   5 x i64   40 B
    count, scored_count   2 x u32    8 B
    alerted     5 x f32   20 B   mean interval, score, sleep range of the last alert;
                                 the next period check (alert updates)
    sampling    u16        2 B   highest sampling rate of the pair's flows (1 = unsampled)
    direction_inferred u8  1 B   bit 1 once a flow's direction was inferred (`core.scope`);
                                 bit 2 while the internal port is fixed (`SERVER_SIDE`)
    long_alert_ms i64      8 B   start of the pair's last long connection
    long_sessions u16      2 B   its long connections, each within the window of the last
    ring_t      H x u32  128 B   connection start, ms after `epoch_ms` (49 days of range)
    ring_b      H x u16   64 B   connection bytes, log-coded (`size_codec`)
    conn        2 x (u16 + 4 x u32)   36 B   last connections (`connections`)
    index       >= 2 x i32 slots  8-16 B   (hash_index; load factor <= 0.5)
    channels    >= 1 x i64    8-16 B   prefix channels' promotion (`channel_index`), when on
    free, used  i32 + bool   5 B
    sketch      3 x u32 x W/max_pairs  12-24 B   prevalence, one per process (`prevalence`)
                       ~360-380 B per tracked pair (`bytes_per_pair`, bench/core.py),
                       8-16 B more with prefix channels

One table per input partition (`core.partition_state`). A table starts small and doubles when a
batch could fill it, as long as the process's `PairBudget` (``state.max_pairs`` rows over all
partitions) allows; past that, it evicts its own least recently seen pairs.

Slow beacons need no more room than fast ones: the ring keeps the last H connections whatever
their spacing, so a 4 h beacon's ring spans 5 days and the window (default 24 h), not the ring,
limits what is scored; a 1 s beacon's ring spans the last 32 s, plenty to judge it. The
connection count and first-seen time summarise the whole life of the pair beyond the ring.
A pair idle for the window is dropped (`evict_idle`), but one that may be a daily beacon
(two connections a long sleep apart) stays for the long window: it is silent for a whole
window between check-ins, and rule sparse-beacon needs its third.

Times in the rings are stored relative to a table-wide ``epoch_ms`` to halve their size; when
event time runs 24 days past the epoch the table re-bases (`rebase`), which is rare and cheap.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from beaconwatch.domain.dtypes import F32, I32, I64, U8, U16, U32, U64
from beaconwatch.domain.names import NameBook
from beaconwatch.state.channel_index import channel_slots, rebuild
from beaconwatch.state.connections import CONN_FIELDS, CONN_SLOTS, END, NO_CONNECTION, PIECE, START
from beaconwatch.state.hash_index import (
    EMPTY,
    find_slot,
    key_hash,
    remove_row,
    row_hash,
    slots_for,
)
from beaconwatch.state.heap import release_freed_memory
from beaconwatch.state.name_channels import NameChannels
from beaconwatch.state.prevalence import Prevalence, add_pair
from beaconwatch.state.table_columns import TableColumns

# Columns of the pair table's `alerted` (f32): what the last alert said, for updates.
ALERTED_MEAN_S = 0  # mean interval
ALERTED_SCORE = 1
ALERTED_LOW_S = 2  # the sleep range the alert described (`scoring.sleep_range`)
ALERTED_HIGH_S = 3
ALERTED_REFINE_AT = 4  # connection count of the next period check, 0 = none (see `state.ingest`)
ALERTED_SIZE = 5

NEVER_MS = np.iinfo(np.int64).min // 2  # "no alert yet": any cooldown has passed since then

# Bits of `direction_inferred`.
INFERRED = 1  # a flow's direction was inferred from the ports (`core.scope`)
# The pair's last new TCP connection was a turned-round record on the internal port of an
# earlier one: the internal host is the server, the pair inbound-initiated (`state.ingest`).
SERVER_SIDE = 2
REBASE_AFTER_MS = 1 << 31  # re-base ring times once they pass half of the u32 range


# Per-row columns: what growing a table copies and a snapshot stores (with the defaults of an
# empty row; rows are also reset when handed out).
ROW_COLUMNS = (
    "keys", "port_proto", "first_seen_ms", "last_seen_ms", "scored_ms", "alert_ms",
    "first_alert_ms", "count", "scored_count", "alerted", "sampling", "ring_t", "ring_b",
    "conn_port", "conn_times", "used", "direction_inferred", "long_alert_ms", "long_sessions",
)  # fmt: skip
MIN_CAPACITY = 1024  # rows a partition's table starts with (about 370 kB)


class PairBudget:
    """Rows of pair tables one process may hold, over all its partitions (``state.max_pairs``).

    Tables take rows when they grow and give them back when their partition is dropped. The
    first tables to grow get the rows: with input keyed by host, partitions grow at the same pace.
    """

    def __init__(self, max_pairs: int) -> None:
        self.max_pairs = max_pairs
        self.granted = 0

    @property
    def available(self) -> int:
        return max(0, self.max_pairs - self.granted)


class PairTable:
    """Storage for the pairs of one partition; kernels in `ingest.py` and below operate on it.

    ``capacity`` rows are allocated now; `reserve` grows the table within ``budget``.
    ``prevalence`` is the process's sketch, which counts every pair the table tracks.
    """

    def __init__(
        self,
        capacity: int,
        history_events: int,
        prevalence: Prevalence,
        budget: PairBudget | None = None,
    ) -> None:
        self.history_events = history_events
        self.prevalence = prevalence
        self.budget = budget if budget is not None else PairBudget(capacity)
        self.budget.granted += capacity
        self.capacity = capacity
        self._allocate(capacity)
        self.free: I32 = np.arange(capacity - 1, -1, -1, dtype=np.int32)
        self.index: I32 = np.full(slots_for(capacity), EMPTY, dtype=np.int32)
        # meta[0] = free-stack size, meta[1] = epoch_ms (ring times are relative to it).
        self.meta: I64 = np.array([capacity, 0], dtype=np.int64)
        # Prefix channels' promotion index (`state.channel_index`): empty until enabled.
        self.channels: I64 = np.empty(0, dtype=np.int64)
        # Name channels' promotion index (`state.name_channels`), None until enabled, and the
        # texts of the names this partition has seen (`domain.names`), for its alerts.
        self.name_channels: NameChannels | None = None
        self.names = NameBook()

    def _allocate(self, rows: int) -> None:
        h = self.history_events
        self.keys: U64 = np.zeros((rows, 4), dtype=np.uint64)
        self.port_proto: U32 = np.zeros(rows, dtype=np.uint32)
        self.first_seen_ms: I64 = np.zeros(rows, dtype=np.int64)
        self.last_seen_ms: I64 = np.zeros(rows, dtype=np.int64)
        self.scored_ms: I64 = np.zeros(rows, dtype=np.int64)
        self.alert_ms: I64 = np.full(rows, NEVER_MS, dtype=np.int64)
        self.first_alert_ms: I64 = np.full(rows, NEVER_MS, dtype=np.int64)
        self.count: U32 = np.zeros(rows, dtype=np.uint32)
        self.scored_count: U32 = np.zeros(rows, dtype=np.uint32)
        self.alerted: F32 = np.zeros((rows, ALERTED_SIZE), dtype=np.float32)
        self.sampling: U16 = np.ones(rows, dtype=np.uint16)  # capped at 65535
        # INFERRED once a flow of the pair had its direction inferred, not read from the
        # record; SERVER_SIDE while its internal port stays fixed (inbound-initiated).
        self.direction_inferred: U8 = np.zeros(rows, dtype=np.uint8)
        # Start of the pair's connection last reported as a long connection (NEVER_MS: none).
        self.long_alert_ms: I64 = np.full(rows, NEVER_MS, dtype=np.int64)
        # Long connections of the pair, each within window_s of the previous one.
        self.long_sessions: U16 = np.zeros(rows, dtype=np.uint16)
        self.ring_t: U32 = np.zeros((rows, h), dtype=np.uint32)
        self.ring_b: U16 = np.zeros((rows, h), dtype=np.uint16)
        self.conn_port: U16 = np.zeros((rows, CONN_SLOTS), dtype=np.uint16)
        self.conn_times: U32 = np.full((rows, CONN_SLOTS, CONN_FIELDS), NO_CONNECTION,
                                       dtype=np.uint32)  # fmt: skip
        self.used = np.zeros(rows, dtype=np.bool_)

    def enable_channels(self) -> None:
        """Track prefix channels' promotion (`state.channel_index`): 8-16 bytes a row."""
        self.channels = np.empty(channel_slots(self.capacity), dtype=np.int64)
        rebuild(self.channels, self.keys, self.port_proto, self.used)

    def enable_names(self) -> None:
        """Track name channels' promotion (`state.name_channels`): 32 bytes a row."""
        self.name_channels = NameChannels(self.capacity)
        self.name_channels.restore(self.keys, self.port_proto, self.used, self.last_seen_ms)

    def columns(self) -> TableColumns:
        """The arrays as the kernels take them; taken anew per call (`grow` replaces them)."""
        return TableColumns(
            self.index, self.keys, self.port_proto, self.first_seen_ms, self.last_seen_ms,
            self.scored_ms, self.alert_ms, self.first_alert_ms, self.count, self.scored_count,
            self.alerted, self.sampling, self.direction_inferred, self.long_alert_ms,
            self.long_sessions, self.ring_t, self.ring_b, self.conn_port, self.conn_times,
            self.free, self.used, self.meta, self.channels,
        )  # fmt: skip

    @property
    def tracked_pairs(self) -> int:
        return self.capacity - int(self.meta[0])

    @property
    def epoch_ms(self) -> int:
        return int(self.meta[1])

    @property
    def evict_batch(self) -> int:
        """Pairs evicted at once when the table is full and may not grow."""
        return max(1, self.capacity // 64)

    @property
    def nbytes(self) -> int:
        """Memory of the table's own arrays (the shared prevalence sketch not included)."""
        own = sum(getattr(self, name).nbytes for name in ROW_COLUMNS)
        index = self.index.nbytes + self.channels.nbytes
        if self.name_channels is not None:
            index += self.name_channels.nbytes
        return int(own + index + self.free.nbytes + self.meta.nbytes)

    @property
    def bytes_per_pair(self) -> float:
        """Memory per tracked pair at full capacity, the process's sketch included."""
        return (self.nbytes + self.prevalence.nbytes) / self.capacity

    def set_epoch(self, epoch_ms: int) -> None:
        self.meta[1] = epoch_ms

    def reserve(self, new_pairs: int) -> None:
        """Grow (doubling) so that ``new_pairs`` more pairs fit without eviction, as far as the
        budget allows."""
        wanted = self.tracked_pairs + new_pairs
        if wanted <= self.capacity:
            return
        target = max(2 * self.capacity, 1 << int(wanted - 1).bit_length())
        grown = min(target, self.capacity + self.budget.available)
        if grown > self.capacity:
            self.grow(grown)

    def grow(self, capacity: int) -> None:
        """Reallocate for ``capacity`` rows; rows keep their numbers, the index is rebuilt."""
        old = self.capacity
        if capacity <= old:
            return
        columns = {name: getattr(self, name) for name in ROW_COLUMNS}
        self._allocate(capacity)
        for name, column in columns.items():
            getattr(self, name)[:old] = column
        free_now = int(self.meta[0])
        free = np.empty(capacity, dtype=np.int32)
        added = capacity - old
        free[:added] = np.arange(capacity - 1, old - 1, -1, dtype=np.int32)
        free[added : added + free_now] = self.free[:free_now]  # handed out first (top of stack)
        self.free = free
        self.meta[0] = added + free_now
        self.index = np.full(slots_for(capacity), EMPTY, dtype=np.int32)
        _index_rows(self.index, self.keys, self.port_proto, self.used)
        if self.channels.size:
            self.enable_channels()
        if self.name_channels is not None:
            self.enable_names()
        self.budget.granted += added
        self.capacity = capacity
        del columns
        release_freed_memory()  # the old columns' heap memory (see `state.heap`)

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

    def find(self, src: tuple[int, int], dst: tuple[int, int], port_proto: int) -> int:
        """The row of a tracked pair (addresses as (hi, lo) halves), or -1."""
        args = (
            np.uint64(src[0]), np.uint64(src[1]), np.uint64(dst[0]), np.uint64(dst[1]),
            np.uint32(port_proto),
        )  # fmt: skip
        row = int(_find_row(self.index, self.keys, self.port_proto, *args))
        return row if row != EMPTY else -1

    def evict_idle(
        self,
        cutoff_ms: int,
        long_cutoff_ms: int | None = None,
        single_cutoff_ms: int | None = None,
        long_gap_ms: int = 0,
    ) -> int:
        """Drop pairs whose last connection is older than ``cutoff_ms``; returns how many.

        With ``long_cutoff_ms`` (now - long window), a pair of exactly two connections at
        least ``long_gap_ms`` apart is kept until its last one is older than that: a daily
        beacon is silent for 24 h between check-ins, longer than the window, and rule
        sparse-beacon judges its third. Only those: keeping every pair of two or more
        connections for the long window nearly doubled a busy table (102k -> 178k rows on
        the evaluation's office) and cost the detector 16 % for no other alert. Pairs of one
        connection go after the window, or at ``single_cutoff_ms`` if given (the rule's grace
        for a jittered 24 h first sleep); capacity eviction bounds memory either way."""
        single = cutoff_ms if single_cutoff_ms is None else single_cutoff_ms
        p = self.prevalence
        return int(
            _evict_idle(self.index, self.keys, self.port_proto, self.free, self.used, self.meta,
                        p.sketch, p.nonzero, self.count, self.first_seen_ms, self.last_seen_ms,
                        cutoff_ms, single, long_cutoff_ms is not None,
                        cutoff_ms if long_cutoff_ms is None else long_cutoff_ms, long_gap_ms)
        )  # fmt: skip

    def release(self) -> int:
        """Drop every pair (the partition was revoked) and give the rows back to the budget;
        the table is unusable afterwards. Returns the number of pairs dropped."""
        dropped = self._evict(np.ones(self.capacity, dtype=np.bool_))
        self.budget.granted -= self.capacity
        self.capacity = 0
        return dropped

    def adopt_rows(self, rows: int, epoch_ms: int) -> None:
        """Take rows 0..rows-1, filled in by the caller (a restored snapshot), as tracked:
        rebuild the free stack and the index, count them into the prevalence sketch."""
        self.used[:rows] = True
        self.free[: self.capacity - rows] = np.arange(self.capacity - 1, rows - 1, -1)
        self.meta[0] = self.capacity - rows
        self.meta[1] = epoch_ms
        self.index[:] = EMPTY
        _index_rows(self.index, self.keys, self.port_proto, self.used)
        if self.channels.size:
            self.enable_channels()
        if self.name_channels is not None:
            self.enable_names()
        self.count_into(self.prevalence)

    def count_into(self, prevalence: Prevalence) -> None:
        """Add every tracked pair to ``prevalence`` (a restored table joining a process)."""
        _count_rows(prevalence.sketch, prevalence.nonzero, self.keys, self.port_proto, self.used)

    def _evict(self, mask: npt.NDArray[np.bool_]) -> int:
        p = self.prevalence
        return int(
            _evict_where(self.index, self.keys, self.port_proto, self.free, self.used, self.meta,
                         p.sketch, p.nonzero, mask)
        )  # fmt: skip


@njit(cache=True, nogil=True)
def _find_row(
    index: I32, keys: U64, port_proto: U32, src_hi: np.uint64, src_lo: np.uint64,
    dst_hi: np.uint64, dst_lo: np.uint64, pp: np.uint32,
) -> int:  # fmt: skip
    # Hashed in here: a hash passed from Python could be typed as a signed int64 by an
    # earlier compilation of `find_slot` and overflow.
    h = key_hash(src_hi, src_lo, dst_hi, dst_lo, pp)
    return int(index[find_slot(index, keys, port_proto, h, src_hi, src_lo, dst_hi, dst_lo, pp)])


@njit(cache=True, nogil=True)
def _index_rows(index: I32, keys: U64, port_proto: U32, used: npt.NDArray[np.bool_]) -> None:
    for row in range(used.shape[0]):
        if used[row]:
            h = row_hash(keys, port_proto, row)
            slot = find_slot(index, keys, port_proto, h, keys[row, 0], keys[row, 1],
                             keys[row, 2], keys[row, 3], port_proto[row])  # fmt: skip
            index[slot] = row


@njit(cache=True, nogil=True)
def _count_rows(
    sketch: U32, nonzero: I64, keys: U64, port_proto: U32, used: npt.NDArray[np.bool_]
) -> None:
    for row in range(used.shape[0]):
        if used[row]:
            add_pair(sketch, nonzero, keys, port_proto[row], row, 1)


@njit(cache=True, nogil=True)
def release_row(
    index: I32, keys: U64, port_proto: U32, free: I32, used: npt.NDArray[np.bool_],
    meta: I64, sketch: U32, nonzero: I64, row: int,
) -> None:  # fmt: skip
    add_pair(sketch, nonzero, keys, port_proto[row], row, -1)
    remove_row(index, keys, port_proto, row)
    used[row] = False
    free[meta[0]] = row
    meta[0] += 1


@njit(cache=True, nogil=True)
def _evict_where(
    index: I32, keys: U64, port_proto: U32, free: I32, used: npt.NDArray[np.bool_],
    meta: I64, sketch: U32, nonzero: I64, mask: npt.NDArray[np.bool_],
) -> int:  # fmt: skip
    evicted = 0
    for row in range(used.shape[0]):
        if used[row] and mask[row]:
            release_row(index, keys, port_proto, free, used, meta, sketch, nonzero, row)
            evicted += 1
    return evicted


@njit(cache=True, nogil=True)
def _evict_idle(
    index: I32, keys: U64, port_proto: U32, free: I32, used: npt.NDArray[np.bool_],
    meta: I64, sketch: U32, nonzero: I64, count: U32, first_seen_ms: I64, last_seen_ms: I64,
    cutoff_ms: int, single_cutoff_ms: int, keep_sparse: bool, long_cutoff_ms: int,
    long_gap_ms: int,
) -> int:  # fmt: skip
    """`PairTable.evict_idle` in one pass over the rows (masks over a table of 100k+ rows,
    built per sweep, cost more than the sweep's evictions)."""
    evicted = 0
    # Most rows were seen after every cutoff: one comparison each.
    latest_cutoff_ms = max(cutoff_ms, single_cutoff_ms, long_cutoff_ms if keep_sparse else 0)
    for row in range(used.shape[0]):
        last = last_seen_ms[row]
        if last >= latest_cutoff_ms or not used[row]:
            continue
        n = count[row]
        if keep_sparse and n == 2 and last - first_seen_ms[row] >= long_gap_ms:
            idle = last < long_cutoff_ms
        elif n < 2:
            idle = last < single_cutoff_ms
        else:
            idle = last < cutoff_ms
        if idle:
            release_row(index, keys, port_proto, free, used, meta, sketch, nonzero, row)
            evicted += 1
    return evicted


@njit(cache=True, nogil=True)
def evict_least_recent(
    index: I32, keys: U64, port_proto: U32, free: I32, used: npt.NDArray[np.bool_],
    meta: I64, sketch: U32, nonzero: I64, last_seen_ms: I64, count: U32, how_many: int,
    protect_ms: int,
) -> tuple[int, int]:  # fmt: skip
    """Evict (at least) the ``how_many`` least recently seen pairs, in one O(rows) pass;
    returns (evicted, of them pairs with history).

    A pair with history (two connections or more) counts as seen ``protect_ms`` later than it
    was: a flood of one-off pairs (a scan, a spray of new destinations, an attacker hiding a
    beacon) evicts its own newcomers before any established pair seen within that time, so a
    1 h beacon keeps its ring however fast the one-offs come. Evicting a slice at once
    instead of one pair per insert keeps the cost of a full table amortised to a few
    nanoseconds per new pair.
    """
    n = used.shape[0]
    seen = np.empty(n, dtype=np.int64)
    big = np.iinfo(np.int64).max
    for row in range(n):
        if not used[row]:
            seen[row] = big
        elif count[row] >= 2:
            seen[row] = last_seen_ms[row] + protect_ms
        else:
            seen[row] = last_seen_ms[row]
    k = min(how_many, n) - 1
    threshold = np.partition(seen, k)[k]
    evicted = established = 0
    for row in range(n):
        if used[row] and seen[row] <= threshold and evicted < how_many:
            established += count[row] >= 2
            release_row(index, keys, port_proto, free, used, meta, sketch, nonzero, row)
            evicted += 1
    return evicted, established
