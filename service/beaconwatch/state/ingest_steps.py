"""The ingest kernel's per-flow steps (numba), in the order `state.ingest` runs them.

Each takes scalars and the few columns it reads or writes, never the table tuple: numba
increfs every array it reads out of a tuple, per call, and the kernel calls these per flow
(handing them the table cost 25-48 % of throughput in an earlier attempt). Small enough for
LLVM to inline into the loop.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import BOOL, F32, I32, I64, U8, U16, U32, U64, AnyArray
from beaconwatch.domain.flows import INITIATOR_SRC
from beaconwatch.state.connections import NO_CONNECTION, SEQ, START
from beaconwatch.state.hash_index import find_slot
from beaconwatch.state.kernel_params import Limits
from beaconwatch.state.pair_table import INFERRED, SERVER_SIDE, evict_least_recent
from beaconwatch.state.prevalence import add_pair
from beaconwatch.state.size_codec import decode_size, encode_size

# Event-time verdicts, the kernel's ``status`` per flow.
ACCEPTED = 0
TOO_LATE = 1
TOO_FAR_FUTURE = 2
# A start beyond what 32-bit ring times after the partition's epoch can hold (~46 days after
# its watermark): only a file of old data can hold one, since live flows are checked against
# the wall clock. Rejected as too far in the future rather than stored with a clipped time.
BEYOND_RING = 3

U32_MAX = np.uint64(0xFFFF_FFFF)
NEVER_MS = np.iinfo(np.int64).min // 2  # as `pair_table.NEVER_MS`: no alert yet

# `due_for_scoring`'s answers.
NOT_DUE = 0
DUE = 1
DUE_PERIOD_CHECK = 2  # due for an alerted pair's period check (see `state.ingest`)


@njit(cache=True, nogil=True)
def event_time_verdict(
    start_ms: int, end_ms: int, oldest_export_ms: int, epoch_ms: int, max_start_ms: int
) -> int:
    """ACCEPTED, or why a flow is rejected. Too late: it ended (could last have been
    exported) more than the allowed lateness before the watermark (``oldest_export_ms``), or
    it starts before the epoch, where a start time cannot be stored (only data older than a
    whole window before the first batch of another partition gets there)."""
    if max(start_ms, end_ms) < oldest_export_ms or start_ms < epoch_ms:
        return TOO_LATE
    if start_ms > max_start_ms:
        return TOO_FAR_FUTURE
    if start_ms - epoch_ms >= np.int64(U32_MAX):
        return BEYOND_RING
    return ACCEPTED


@njit(cache=True, nogil=True)
def due_for_scoring(
    connections: int, t: int, first_seen_ms: int, alert_ms: int, scored_count: int,
    scored_ms: int, refine_at: int, limits: Limits,
) -> int:  # fmt: skip
    """Whether the pair is due for scoring at its new connection (at ``t``, making
    ``connections``): NOT_DUE, DUE or DUE_PERIOD_CHECK."""
    # Signed: a backoff sets scored_count above the connections, and a difference of
    # unsigned counts (numba's int() of a uint32 is a uint64) would wrap round to "due".
    n, scored = np.int64(connections), np.int64(scored_count)
    if n < limits.min_events and not _slow_and_enough(n, t - first_seen_ms, limits):
        return NOT_DUE
    # An alert from a part-filled ring (as few as min_events connections) reads the
    # sleep from few intervals. Its period is checked again each time the pair's
    # connections double, until the ring is full: a described sleep range that moved is
    # an update even within the cooldown (at most log2(history / min_events) checks).
    if refine_at > 0 and n >= refine_at:
        return DUE_PERIOD_CHECK
    # Otherwise no alert can follow within the cooldown after an alert, so the pair is not
    # scored: a beacon that has alerted costs no scoring until its cooldown is over.
    if alert_ms != NEVER_MS and t - alert_ms < limits.cooldown_ms:
        return NOT_DUE
    if n - scored < limits.rescore_every and t - scored_ms < limits.rescore_interval_ms:
        return NOT_DUE
    return DUE


@njit(cache=True, nogil=True)
def _slow_and_enough(connections: np.int64, seen_for_ms: int, limits: Limits) -> bool:
    """A slow pair with enough connections to score before min_events: at least
    min_events_slow of them, at most one per slow_interval_s on average since the first."""
    return bool(
        connections >= limits.min_events_slow
        and seen_for_ms >= (connections - 1) * limits.slow_interval_ms
    )


@njit(cache=True, nogil=True)
def claim_row(
    hash_slots: I32, keys: U64, port_proto: U32, free: I32, used: BOOL, meta: I64,
    sketch: U32, nonzero: I64, last_seen_ms: I64, n_connections: U32, limits: Limits,
    counters: AnyArray, h: np.uint64, slot: int, src_hi: np.uint64, src_lo: np.uint64,
    dst_hi: np.uint64, dst_lo: np.uint64, pp: np.uint32,
) -> int:  # fmt: skip
    """A free row for a new pair, indexed at ``slot`` under its key (evicting the least
    recent pairs first when the table is full), counted in the prevalence sketch; its other
    columns are `reset_row`'s."""
    if meta[0] == 0:
        evicted, established = evict_least_recent(
            hash_slots, keys, port_proto, free, used, meta, sketch, nonzero, last_seen_ms,
            n_connections, limits.evict_batch, limits.window_ms,
        )  # fmt: skip
        counters[0]["evicted_capacity"] += evicted
        counters[0]["evicted_established"] += established
        # Eviction shifted the index: look the slot up again.
        slot = find_slot(hash_slots, keys, port_proto, h, src_hi, src_lo, dst_hi, dst_lo, pp)
    meta[0] -= 1
    row = free[meta[0]]
    used[row] = True
    hash_slots[slot] = row
    keys[row, 0] = src_hi
    keys[row, 1] = src_lo
    keys[row, 2] = dst_hi
    keys[row, 3] = dst_lo
    port_proto[row] = pp
    add_pair(sketch, nonzero, keys, pp, row, 1)
    counters[0]["new_pairs"] += 1
    return int(row)


@njit(cache=True, nogil=True)
def reset_row(
    first_seen_ms: I64, last_seen_ms: I64, scored_ms: I64, alert_ms: I64, first_alert_ms: I64,
    n_connections: U32, scored_count: U32, alerted: F32, sampling: U16,
    direction_inferred: U8, long_alert_ms: I64, long_sessions: U16, conn_times: U32,
    row: int, t: int,
) -> None:  # fmt: skip
    """A new pair's state, first seen at ``t``: no connection, score or alert yet."""
    first_seen_ms[row] = t
    last_seen_ms[row] = t
    scored_ms[row] = t
    alert_ms[row] = NEVER_MS
    first_alert_ms[row] = NEVER_MS
    n_connections[row] = 0
    scored_count[row] = 0
    alerted[row, :] = 0.0
    sampling[row] = 1
    direction_inferred[row] = 0
    long_alert_ms[row] = NEVER_MS
    long_sessions[row] = 0
    for c in range(conn_times.shape[1]):
        conn_times[row, c, START] = NO_CONNECTION


@njit(cache=True, nogil=True)
def note_flow(
    direction_inferred: U8, sampling: U16, last_seen_ms: I64, row: int, initiator: int,
    sampling_rate: np.uint32, t: int,
) -> None:  # fmt: skip
    """What every accepted flow tells of its pair: whether its direction was inferred,
    the highest sampling rate, the last start seen."""
    if initiator != INITIATOR_SRC:  # the record did not say who started it (`core.scope`)
        direction_inferred[row] = np.uint8(direction_inferred[row] | INFERRED)
    rate = min(sampling_rate, np.uint32(0xFFFF))
    if rate > sampling[row]:
        sampling[row] = rate
    if t > last_seen_ms[row]:
        last_seen_ms[row] = t


@njit(cache=True, nogil=True)
def add_piece_bytes(
    ring_b: U16, conn_times: U32, n_connections: U32, row: int, slot: int, nbytes: np.uint64
) -> None:
    """A continuation's bytes to its connection's ring entry, while it is still in the
    ring."""
    history = ring_b.shape[1]
    seq = np.int64(conn_times[row, slot, SEQ])
    if np.int64(n_connections[row]) - seq <= history:
        pos = seq % history
        ring_b[row, pos] = encode_size(decode_size(ring_b[row, pos]) + nbytes)


@njit(cache=True, nogil=True)
def in_ring(ring_t: U32, row: int, count: int, start: np.uint32) -> bool:
    """Whether a connection in the pair's ring starts at ``start`` (its ring time)."""
    for k in range(min(count, ring_t.shape[1])):  # noqa: SIM110 (a loop numba compiles)
        if ring_t[row, k] == start:
            return True
    return False


@njit(cache=True, nogil=True)
def note_server_side(
    direction_inferred: U8, conn_port: U16, conn_times: U32, row: int, port: int
) -> None:
    """A new TCP connection from a turned-round record (`INITIATOR_TURNED`): the pair is
    the internal host's server side (`SERVER_SIDE`) when its internal port is that of one of
    the pair's last connections, and no longer when it is not. A TCP client takes a fresh
    ephemeral port per connection (two in a row share one by chance about once in 28,000);
    a server keeps its port, and so does a scanner's target (`core.scope`)."""
    kept = False
    for s in range(conn_port.shape[1]):
        if conn_times[row, s, START] != NO_CONNECTION and conn_port[row, s] == port:
            kept = True
    if kept:
        direction_inferred[row] = np.uint8(direction_inferred[row] | SERVER_SIDE)
    else:
        direction_inferred[row] = np.uint8(direction_inferred[row] & (0xFF ^ SERVER_SIDE))


@njit(cache=True, nogil=True)
def append_to_ring(
    ring_t: U32, ring_b: U16, n_connections: U32, first_seen_ms: I64, row: int,
    ring_start: np.uint32, nbytes: np.uint64, t: int,
) -> np.int64:  # fmt: skip
    """A new connection into the pair's rings (over its oldest once full); returns the
    pair's connections."""
    pos = n_connections[row] % ring_t.shape[1]
    ring_t[row, pos] = ring_start
    ring_b[row, pos] = encode_size(np.float64(nbytes))
    n_connections[row] += 1
    if t < first_seen_ms[row]:
        first_seen_ms[row] = t
    return np.int64(n_connections[row])  # signed: numba's int() of a uint32 is a uint64
