"""The per-record kernel: event-time checks, pair lookup/insert, ring update, scoring when due.

A pair is scored at the connection that makes it due: once it has ``min_events`` connections,
after every ``rescore_every_events`` new ones, or when a connection arrives at least
``rescore_interval_ms`` after the last scoring. Deciding per connection (not per batch) makes the
alerts independent of how records were batched, so `scan` on a file and the Kafka service on
the same flows give the same alerts. A pair is never re-scored on every record: a full window
costs microseconds, and doing it per record would cap throughput far below the pipeline target.

Event-time window of a score, with W = window_ms and t = the due connection's start:

    ---|=========== window: ring entries with start >= t - W ===========|---> event time
     t - W                                                              t
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

from beaconwatch.scoring.window_score import N_STATS, Stat, new_workspace, score_window
from beaconwatch.state.hash_index import EMPTY, find_slot, key_hash
from beaconwatch.state.pair_table import evict_least_recent

ACCEPTED = 0
TOO_LATE = 1
TOO_FAR_FUTURE = 2

# Slots of the `limits` int64 vector.
LIM_WATERMARK_MS = 0
LIM_LATENESS_MS = 1
LIM_MAX_START_MS = 2  # absolute: wall clock + max_future_s (garbage timestamps)
LIM_WINDOW_MS = 3
LIM_MIN_EVENTS = 4
LIM_RESCORE_EVERY = 5
LIM_RESCORE_INTERVAL_MS = 6
LIM_COOLDOWN_MS = 7
LIM_EVICT_BATCH = 8
LIM_SIZE = 9

# Slots of the `counters` int64 vector returned alongside the alerts.
CNT_ACCEPTED = 0
CNT_NEW_PAIRS = 1
CNT_EVICTED_CAPACITY = 2
CNT_SCORED = 3
CNT_ALERTS = 4
CNT_SIZE = 5

U32_MAX = np.uint64(0xFFFF_FFFF)

I16 = npt.NDArray[np.int16]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
F64 = npt.NDArray[np.float64]
BOOL = npt.NDArray[np.bool_]


@njit(cache=True, nogil=True)
def _gather_window(
    ring_t: U32, ring_b: U32, row: int, valid: int, oldest: int, cutoff_rel: int,
    times_s: F64, sizes: F64,
) -> tuple[int, int, int]:  # fmt: skip
    """Copy the ring entries inside the window into ``times_s``/``sizes``, sorted by time.

    Returns (entries, first_rel_ms, last_rel_ms). Reading the ring from its oldest slot gives
    a nearly sorted sequence (only late arrivals are out of place), so insertion sort is O(n).
    """
    history = ring_t.shape[1]
    m = 0
    for j in range(valid):
        slot = (oldest + j) % history
        rel = ring_t[row, slot]
        if np.int64(rel) < cutoff_rel:
            continue
        t = rel / 1000.0
        b = np.float64(ring_b[row, slot])
        k = m
        while k > 0 and times_s[k - 1] > t:
            times_s[k] = times_s[k - 1]
            sizes[k] = sizes[k - 1]
            k -= 1
        times_s[k] = t
        sizes[k] = b
        m += 1
    if m == 0:
        return 0, 0, 0
    # Times are whole ms, exactly representable: adding 0.5 and truncating rounds them back.
    return m, int(np.int64(times_s[0] * 1000.0 + 0.5)), int(np.int64(times_s[m - 1] * 1000.0 + 0.5))


@njit(cache=True, nogil=True)
def ingest(
    # table
    index: I32, keys: U64, port_proto: U32, partition_of: I16, first_seen_ms: I64,
    last_seen_ms: I64, scored_ms: I64, alert_ms: I64, count: U32, scored_count: U32,
    ring_t: U32, ring_b: U32, free: I32, used: BOOL, meta: I64,
    # flows
    start_ms: I64, src_hi: U64, src_lo: U64, dst_hi: U64, dst_lo: U64, dst_port: U16,
    proto: U8, nbytes: U64, partition: int,
    # parameters
    limits: I64, score_params: F64, threshold: float,
    # outputs
    status: U8, counters: I64, alert_rows: I32, alert_stats: F64, alert_times: I64,
) -> None:  # fmt: skip
    """Ingest flows in order; fills `status` per flow and one output row per alert.

    ``alert_times[k]`` holds (detected_ms, window_start_ms, window_end_ms) of alert ``k``.
    """
    history = ring_t.shape[1]
    wm = limits[LIM_WATERMARK_MS]
    epoch = meta[1]
    stats = np.empty(N_STATS, dtype=np.float64)
    window_t = np.empty(history, dtype=np.float64)
    window_b = np.empty(history, dtype=np.float64)
    work = new_workspace(history)
    for i in range(start_ms.shape[0]):
        t = start_ms[i]
        # Before the epoch a start time cannot be stored (only data older than a whole window
        # before the first batch of another partition gets here).
        if t < wm - limits[LIM_LATENESS_MS] or t < epoch:
            status[i] = TOO_LATE
            continue
        if t > limits[LIM_MAX_START_MS]:
            status[i] = TOO_FAR_FUTURE
            continue
        if t > wm:
            wm = t
        status[i] = ACCEPTED
        counters[CNT_ACCEPTED] += 1

        pp = np.uint32((np.uint32(dst_port[i]) << np.uint32(8)) | np.uint32(proto[i]))
        h = key_hash(src_hi[i], src_lo[i], dst_hi[i], dst_lo[i], pp)
        slot = find_slot(index, keys, port_proto, h, src_hi[i], src_lo[i], dst_hi[i], dst_lo[i], pp)
        row = index[slot]
        if row == EMPTY:
            if meta[0] == 0:
                counters[CNT_EVICTED_CAPACITY] += evict_least_recent(
                    index, keys, port_proto, free, used, meta, last_seen_ms,
                    limits[LIM_EVICT_BATCH],
                )  # fmt: skip
                # Eviction shifted the index: look the slot up again.
                slot = find_slot(
                    index, keys, port_proto, h, src_hi[i], src_lo[i], dst_hi[i], dst_lo[i], pp
                )
            meta[0] -= 1
            row = free[meta[0]]
            used[row] = True
            index[slot] = row
            keys[row, 0] = src_hi[i]
            keys[row, 1] = src_lo[i]
            keys[row, 2] = dst_hi[i]
            keys[row, 3] = dst_lo[i]
            port_proto[row] = pp
            first_seen_ms[row] = t
            last_seen_ms[row] = t
            scored_ms[row] = t
            alert_ms[row] = np.iinfo(np.int64).min // 2
            count[row] = 0
            scored_count[row] = 0
            counters[CNT_NEW_PAIRS] += 1

        partition_of[row] = partition
        rel = max(np.int64(0), t - epoch)
        pos = count[row] % history
        ring_t[row, pos] = np.uint32(min(np.uint64(rel), U32_MAX))
        ring_b[row, pos] = np.uint32(min(nbytes[i], U32_MAX))
        count[row] += 1
        if t > last_seen_ms[row]:
            last_seen_ms[row] = t
        if t < first_seen_ms[row]:
            first_seen_ms[row] = t

        n = np.int64(count[row])
        if n < limits[LIM_MIN_EVENTS]:
            continue
        if (
            n - np.int64(scored_count[row]) < limits[LIM_RESCORE_EVERY]
            and t - scored_ms[row] < limits[LIM_RESCORE_INTERVAL_MS]
        ):
            continue
        valid = min(n, history)
        oldest = count[row] % history if n > history else 0
        m, first_rel, last_rel = _gather_window(
            ring_t, ring_b, row, valid, oldest, rel - limits[LIM_WINDOW_MS], window_t, window_b
        )
        score_window(window_t[:m], window_b[:m], score_params, stats, work)
        w_start = epoch + first_rel
        w_end = epoch + last_rel
        scored_count[row] = count[row]
        scored_ms[row] = t
        counters[CNT_SCORED] += 1
        if stats[Stat.SCORE] >= threshold and t - alert_ms[row] >= limits[LIM_COOLDOWN_MS]:
            alert_ms[row] = t
            k = counters[CNT_ALERTS]
            alert_rows[k] = row
            alert_stats[k, :] = stats
            alert_times[k, 0] = t
            alert_times[k, 1] = w_start
            alert_times[k, 2] = w_end
            counters[CNT_ALERTS] += 1
    limits[LIM_WATERMARK_MS] = wm


@njit(cache=True, nogil=True)
def score_rows(
    ring_t: U32, ring_b: U32, count: U32, last_seen_ms: I64, used: BOOL, epoch: int,
    window_ms: int, score_params: F64, rows_out: I32, stats_out: F64,
) -> int:  # fmt: skip
    """Score every tracked pair on its window ending at its last connection.

    Fills ``rows_out[:k]``/``stats_out[:k]`` and returns ``k``, the number of tracked pairs.
    """
    history = ring_t.shape[1]
    window_t = np.empty(history, dtype=np.float64)
    window_b = np.empty(history, dtype=np.float64)
    work = new_workspace(history)
    k = 0
    for row in range(used.shape[0]):
        if not used[row]:
            continue
        n = np.int64(count[row])
        valid = min(n, history)
        oldest = count[row] % history if n > history else 0
        cutoff_rel = last_seen_ms[row] - epoch - window_ms
        m, _, _ = _gather_window(ring_t, ring_b, row, valid, oldest, cutoff_rel, window_t, window_b)
        score_window(window_t[:m], window_b[:m], score_params, stats_out[k], work)
        rows_out[k] = row
        k += 1
    return k
