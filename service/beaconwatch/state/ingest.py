"""The per-record kernel: event-time checks, pair lookup/insert, connection merging, ring
update, scoring when due, prevalence and the alert lifecycle.

A pair is scored at the connection that makes it due: once it has ``min_events`` connections,
after every ``rescore_every_events`` new ones, or when a connection arrives at least
``rescore_interval_ms`` after the last scoring (twice as many, or twice as long, after a
score of 0 or a scoring of an alerted pair that changed nothing); never within the cooldown
after its last alert, but for its period checks. Deciding per connection (not per batch) makes
the alerts independent of how records were batched, so `scan` on a file and the Kafka service
on the same flows give the same alerts. A pair is never re-scored on every record: a full window
costs microseconds, and doing it per record would cap throughput far below the pipeline target.

Records that repeat or continue a known connection (`connections`) update it but add no new
start. Alert lifecycle per pair: the first score at or above the threshold emits a "new" alert;
later, an "update" is emitted only when the period or the score changed materially since the
last alert and at least one cooldown has passed; nothing in between, but for one exception:
an alert from a part-filled ring has its period checked each time the pair's connections
double, until the ring is full, and a sleep range that moved is an update at once.

Event-time window of a score, with W = window_ms and t = the due connection's start:

    ---|=========== window: ring entries with start >= t - W ===========|---> event time
     t - W                                                              t

Slow beacons: a 4 h beacon has only 6 check-ins in a 24 h window, too few to tell from chance.
When the window holds fewer than half the ring (``history // 2`` connections), it reaches
further back, up to the long window L = long_window_ms, until it holds that many: the ring of
recent starts is the per-pair summary, so slow pairs cost no more memory than fast ones.

    ---|----------- older ring entries, only while the window holds < history // 2 ---|===W===|
     t - L                                                                            t - W   t
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import F32, F64, I32, I64, U8, U16, U32, U64
from beaconwatch.domain.flows import INITIATOR_SRC, INITIATOR_TURNED
from beaconwatch.scoring.bursts import burst_gap_s, merge_bursts
from beaconwatch.scoring.daily import ALL_GATES, MIN_BYTES, SIZE_SPREAD_LN, three_connection_gates
from beaconwatch.scoring.sleep_range import described_range
from beaconwatch.scoring.window_score import (
    N_STATS,
    Param,
    Stat,
    new_workspace,
    score_window_paired,
)
from beaconwatch.state.channel_index import (
    NOT_FED,
    bucket_of,
    listed,
    register,
    route,
    seed_prefix_row,
    tagged,
)
from beaconwatch.state.connections import (
    CONTINUATION,
    DUPLICATE,
    END,
    NEW_CONNECTION,
    NO_CONNECTION,
    SEQ,
    START,
    match_connection,
    remember_connection,
)  # fmt: skip
from beaconwatch.state.hash_index import EMPTY, find_slot, key_hash
from beaconwatch.state.kernel_params import Limits, Policy
from beaconwatch.state.levels import PREFIX_LEVEL_U32, mask_destination
from beaconwatch.state.pair_table import (
    ALERTED_HIGH_S,
    ALERTED_LOW_S,
    ALERTED_MEAN_S,
    ALERTED_REFINE_AT,
    ALERTED_SCORE,
    INFERRED,
    SERVER_SIDE,
    evict_least_recent,
)
from beaconwatch.state.prevalence import (
    add_pair,
    destination_sources,
    fleet_sources,
    source_fanout,
)
from beaconwatch.state.size_codec import decode_size, encode_size
from beaconwatch.state.table_columns import TableColumns

ACCEPTED = 0
TOO_LATE = 1
TOO_FAR_FUTURE = 2
# A start beyond what 32-bit ring times after the partition's epoch can hold (~46 days after
# its watermark): only a file of old data can hold one, since live flows are checked against
# the wall clock. Rejected as too far in the future rather than stored with a clipped time.
BEYOND_RING = 3

# Slots of the per-alert `alert_extra` float64 rows (and of `score_rows`' extra output).
EXTRA_LIFECYCLE = 0  # 1 = new, 2 = update
EXTRA_PREVALENCE_SOURCES = 1  # distinct internal sources reaching the destination
EXTRA_PREVALENCE = 2  # that count as a share of all internal sources with tracked pairs
EXTRA_PREVALENCE_FACTOR = 3  # what prevalence multiplied the score by
EXTRA_RAW_SCORE = 4  # the score before prevalence
EXTRA_CHECK_INS = 5  # connections since the pair was first seen, at the alert
EXTRA_PER_CHECK_IN = 6  # connections per check-in in the scored window (bursts; else 1)
EXTRA_KIND = 7  # KIND_BEACON or KIND_LONG_CONNECTION
EXTRA_DURATION_S = 8  # a long connection's duration so far
EXTRA_FANOUT = 9  # destinations the source keeps in the pair's high port block
EXTRA_SIZE = 10

KIND_BEACON = 0
KIND_LONG_CONNECTION = 1
KIND_SPARSE_BEACON = 2  # three daily check-ins to a new destination (`_sparse_beacon`)
SPARSE_SCORE = 0.8  # the rule's fixed score: its alerts are hunting leads, severity low

LIFECYCLE_NEW = 1
LIFECYCLE_UPDATE = 2

# alert_times columns
AT_DETECTED_MS = 0
AT_WINDOW_START_MS = 1
AT_WINDOW_END_MS = 2
AT_FIRST_ALERT_MS = 3
AT_FIRST_SEEN_MS = 4
AT_SIZE = 5

# Slots of the `counters` int64 vector returned alongside the alerts.
CNT_ACCEPTED = 0
CNT_NEW_PAIRS = 1
CNT_EVICTED_CAPACITY = 2
CNT_SCORED = 3
CNT_ALERTS = 4
CNT_DUPLICATES = 5
CNT_CONTINUATIONS = 6
CNT_EVICTED_ESTABLISHED = 7  # of CNT_EVICTED_CAPACITY, pairs with two connections or more
CNT_SIZE = 8

U32_MAX = np.uint64(0xFFFF_FFFF)
TCP = 6
NEVER_MS = np.iinfo(np.int64).min // 2


@njit(cache=True, nogil=True)
def _gather_window(
    ring_t: U32, ring_b: U16, row: int, valid: int, oldest: int, cutoff_rel: int,
    long_cutoff_rel: int, times_s: F64, sizes: F64,
) -> tuple[int, int, int]:  # fmt: skip
    """Copy the ring entries inside the window into ``times_s``/``sizes``, sorted by time.

    The window is the entries at or after ``cutoff_rel``; when those are fewer than half the
    ring, older entries at or after ``long_cutoff_rel`` are added, newest first, up to half the
    ring. Returns (entries, first_rel_ms, last_rel_ms). Reading the ring from its oldest slot
    gives a nearly sorted sequence (only late arrivals are out of place), so insertion sort is
    O(n).
    """
    history = ring_t.shape[1]
    m = 0
    recent = 0
    for j in range(valid):
        slot = (oldest + j) % history
        rel = ring_t[row, slot]
        if np.int64(rel) < long_cutoff_rel:
            continue
        if np.int64(rel) >= cutoff_rel:
            recent += 1
        t = rel / 1000.0
        b = decode_size(ring_b[row, slot])
        k = m
        while k > 0 and times_s[k - 1] > t:
            times_s[k] = times_s[k - 1]
            sizes[k] = sizes[k - 1]
            k -= 1
        times_s[k] = t
        sizes[k] = b
        m += 1
    keep = max(recent, min(m, history // 2))
    drop = m - keep
    if drop > 0:
        times_s[:keep] = times_s[drop:m]
        sizes[:keep] = sizes[drop:m]
        m = keep
    if m == 0:
        return 0, 0, 0
    # Times are whole ms, exactly representable: adding 0.5 and truncating rounds them back.
    return m, int(np.int64(times_s[0] * 1000.0 + 0.5)), int(np.int64(times_s[m - 1] * 1000.0 + 0.5))


@njit(cache=True, nogil=True)
def _score_row(
    ring_t: U32, ring_b: U16, count: U32, row: int, cutoff_rel: int, long_cutoff_rel: int,
    score_params: F64, null_tables: F64, stats: F64, window_t: F64, window_b: F64, work: F64,
    scratch: F64, lean: bool, sampling_rate: int = 1,
) -> tuple[int, int, float]:  # fmt: skip
    """Score the row's window (see `_gather_window`) into ``stats`` (``lean``: see
    `score_window`), its connections grouped into check-ins when they come in bursts
    (`scoring.bursts`).

    Returns the window's (first, last) start, relative to the epoch, and the connections per
    check-in (1.0 when not grouped).
    """
    history = ring_t.shape[1]
    n = np.int64(count[row])
    valid = min(n, history)
    oldest = count[row] % history if n > history else 0
    m, first_rel, last_rel = _gather_window(
        ring_t, ring_b, row, valid, oldest, cutoff_rel, long_cutoff_rel, window_t, window_b
    )
    if sampling_rate > 1:  # a sampled record's bytes times the rate estimate the connection's
        window_b[:m] *= sampling_rate
    per_check_in = 1.0
    gap_s = burst_gap_s(window_t, m, score_params[Param.BURST_GAP_S], scratch)
    if gap_s > 0.0:
        check_ins = merge_bursts(window_t, window_b, m, gap_s)
        per_check_in = m / check_ins
        m = check_ins
    score_window_paired(
        window_t[:m], window_b[:m], score_params, stats, work, null_tables[0], null_tables[1],
        lean,
    )  # fmt: skip
    return first_rel, last_rel, per_check_in


@njit(cache=True, nogil=True)
def _prevalence(
    sketch: U32, nonzero: I64, keys: U64, port_proto: U32, row: int, policy: Policy
) -> tuple[int, float, float]:  # fmt: skip
    """(sources, share of the fleet, score factor) of the row's destination: the factor falls
    linearly from 1 at low_share to 0 at high_share once min_sources reach it."""
    sources = destination_sources(sketch, keys[row, 2], keys[row, 3], port_proto[row])
    share = min(1.0, sources / max(1.0, fleet_sources(sketch, nonzero)))
    factor = 1.0
    if sources >= policy.prevalence_min_sources:
        low, high = policy.prevalence_low, policy.prevalence_high
        factor = min(1.0, max(0.0, 1.0 - (share - low) / max(1e-9, high - low)))
    return sources, share, factor


@njit(cache=True, nogil=True)
def _apply_prevalence(
    stats: F64, extra: F64, sketch: U32, nonzero: I64, keys: U64, port_proto: U32, row: int,
    policy: Policy,
) -> None:  # fmt: skip
    """Down-rank destinations much of the fleet talks to (fleet-wide polling is not C2), and
    a source's fan-out to many destinations in one high port block (P2P keep-alives)."""
    sources, share, factor = _prevalence(sketch, nonzero, keys, port_proto, row, policy)
    fanout = source_fanout(sketch, keys[row, 0], keys[row, 1], port_proto[row])
    if fanout > policy.fanout_low:
        low, high = policy.fanout_low, policy.fanout_high
        factor *= min(1.0, max(0.0, 1.0 - (fanout - low) / max(1e-9, high - low)))
    extra[EXTRA_FANOUT] = fanout
    extra[EXTRA_PREVALENCE_SOURCES] = sources
    extra[EXTRA_PREVALENCE] = share
    extra[EXTRA_PREVALENCE_FACTOR] = factor
    extra[EXTRA_RAW_SCORE] = stats[Stat.SCORE]
    stats[Stat.SCORE] = stats[Stat.SCORE] * factor


@njit(cache=True, nogil=True)
def _lifecycle(
    stats: F64, t: int, alert_ms: I64, alerted: F32, row: int, limits: Limits, policy: Policy,
    refining: bool,
) -> int:  # fmt: skip
    """0 = no alert, else LIFECYCLE_NEW / LIFECYCLE_UPDATE."""
    score = stats[Stat.SCORE]
    if score < policy.threshold:
        return 0
    if alert_ms[row] == NEVER_MS:
        return LIFECYCLE_NEW
    if refining:  # a period check (see `ingest`): cooldown or not, a corrected range is news
        # The described sleep range, not the anchor: "10 s -20 %" and "8 s +25 %" are the same
        # check-ins, and the shape cannot be told from intervals.
        low, high = _described_range(stats)
        moved = max(
            abs(low - np.float64(alerted[row, ALERTED_LOW_S])),
            abs(high - np.float64(alerted[row, ALERTED_HIGH_S])),
        )
        if moved > policy.update_period_change * stats[Stat.MEAN_INTERVAL_S]:
            return LIFECYCLE_UPDATE
    if t - alert_ms[row] < limits.cooldown_ms:
        return 0
    if _sleep_changed(stats, alerted, row, policy):
        return LIFECYCLE_UPDATE
    # Only an escalation: a wide-jitter beacon's score wanders by more than 0.2 around its
    # level, and each dip and return was an update.
    score_rise = score - np.float64(alerted[row, ALERTED_SCORE])
    if score_rise >= policy.update_score_change:
        return LIFECYCLE_UPDATE
    return 0


@njit(cache=True, nogil=True)
def _sleep_changed(stats: F64, alerted: F32, row: int, policy: Policy) -> bool:
    """Whether the beacon's sleep changed since its last alert: its mean interval moved by
    more than update_period_change, and by more than a quarter of the sleep range the last
    alert described. The mean interval, not the nominal period or the range's ends: with wide
    jitter those hop between equivalent readings ("300 s +/- 50 %", "480 s -50 %") while the
    beacon is unchanged, and each hop was an update (up to one per cooldown, 24 a day)."""
    last_mean = np.float64(alerted[row, ALERTED_MEAN_S])
    last_width = np.float64(alerted[row, ALERTED_HIGH_S]) - np.float64(alerted[row, ALERTED_LOW_S])
    tolerance = max(policy.update_period_change * last_mean, 0.25 * last_width)
    return bool(abs(stats[Stat.MEAN_INTERVAL_S] - last_mean) > tolerance)


@njit(cache=True, nogil=True, inline="always")
def _newly_long(
    conn_times: U32, row: int, slot: int, epoch: int, long_alert_ms: I64, limits: Limits
) -> bool:
    """Whether the connection in ``slot`` just reached long_connection_s (and was not counted
    yet): checked for every flow, so cheap and inlined; the rest is `_long_connection`."""
    min_ms = limits.long_connection_ms
    start = np.int64(conn_times[row, slot, START])
    return bool(
        min_ms > 0
        and np.int64(conn_times[row, slot, END]) - start >= min_ms
        and long_alert_ms[row] != epoch + start
    )


@njit(cache=True, nogil=True)
def _long_connection(
    tb: TableColumns, row: int, slot: int, epoch: int, sketch: U32, nonzero: I64,
    limits: Limits, policy: Policy, counters: I64, alert_rows: I32, alert_stats: F64,
    alert_times: I64, alert_extra: F64,
) -> None:  # fmt: skip
    """Alert on a connection that has lasted long_connection_s, once the pair has had
    long_connection_sessions such connections (each within the window of the last) to a rare
    destination; once per connection.

    C2 held in one session for hours (a websocket, a reverse shell, Meterpreter's reverse_tcp)
    and reconnecting a few times a day has too few starts for interval scoring; its
    active-timeout pieces (`connections`) or one long record show each session. One long
    session is no evidence (a download, a meeting, an SSH login); sessions that come back are.
    Rare: not down-ranked by prevalence (push services, VPNs and chat that much of the fleet
    keeps open are not alerted)."""
    min_ms = limits.long_connection_ms
    if min_ms <= 0:
        return
    start = np.int64(tb.conn_times[row, slot, START])
    end = np.int64(tb.conn_times[row, slot, END])
    if end - start < min_ms or tb.long_alert_ms[row] == epoch + start:
        return
    previous = tb.long_alert_ms[row]
    if previous != NEVER_MS and epoch + start - previous <= limits.window_ms:
        tb.long_sessions[row] = min(tb.long_sessions[row] + 1, 0xFFFF)
    else:
        tb.long_sessions[row] = 1
    tb.long_alert_ms[row] = epoch + start
    if tb.long_sessions[row] < limits.long_sessions:
        return
    sources, share, factor = _prevalence(sketch, nonzero, tb.keys, tb.port_proto, row, policy)
    if factor < 1.0:  # a destination prevalence down-ranks: not rare
        return
    duration_s = (end - start) / 1000.0
    # 0.8 at long_connection_s, rising with the log of the duration: 0.85 (medium) at 3x,
    # 0.92 (high) at 6x, 0.97 (critical) at 12x.
    score = min(0.99, 0.8 + 0.17 * np.log(duration_s * 1000.0 / min_ms) / np.log(12.0))
    k = counters[CNT_ALERTS]
    alert_rows[k] = row
    alert_stats[k, :] = 0.0
    alert_stats[k, Stat.SCORE] = score
    alert_stats[k, Stat.CONNECTIONS] = tb.long_sessions[row]
    alert_extra[k, :] = 0.0
    alert_extra[k, EXTRA_LIFECYCLE] = LIFECYCLE_NEW
    alert_extra[k, EXTRA_KIND] = KIND_LONG_CONNECTION
    alert_extra[k, EXTRA_DURATION_S] = duration_s
    alert_extra[k, EXTRA_PREVALENCE_SOURCES] = sources
    alert_extra[k, EXTRA_PREVALENCE] = share
    alert_extra[k, EXTRA_PREVALENCE_FACTOR] = 1.0
    alert_extra[k, EXTRA_RAW_SCORE] = score
    alert_extra[k, EXTRA_CHECK_INS] = tb.n_connections[row]
    alert_extra[k, EXTRA_PER_CHECK_IN] = 1.0
    alert_times[k, AT_DETECTED_MS] = epoch + end
    alert_times[k, AT_WINDOW_START_MS] = epoch + start
    alert_times[k, AT_WINDOW_END_MS] = epoch + end
    alert_times[k, AT_FIRST_ALERT_MS] = epoch + start
    alert_times[k, AT_FIRST_SEEN_MS] = tb.first_seen_ms[row]
    counters[CNT_ALERTS] += 1


@njit(cache=True, nogil=True)
def _sparse_beacon(
    tb: TableColumns, row: int, epoch: int, sketch: U32, nonzero: I64, limits: Limits,
    policy: Policy, counters: I64, alert_rows: I32, alert_stats: F64, alert_times: I64,
    alert_extra: F64, window_t: F64, window_b: F64,
) -> None:  # fmt: skip
    """Rule sparse-beacon, at a pair's third connection: a daily beacon has only 3 check-ins
    in the long window, too few for any interval test (two intervals: p = r at best). It
    alerts, once, as a hunting lead when every gate of `scoring.daily` passes (both intervals
    >= sparse_min_interval_ms and regular, two of three sizes alike) and no other internal
    host reaches the destination; evaluation.daily_windows counts what passes on benign
    traffic."""
    history = tb.ring_t.shape[1]
    for j in range(3):
        pos = (tb.n_connections[row] - 3 + j) % history
        window_t[j] = tb.ring_t[row, pos] / 1000.0
        window_b[j] = decode_size(tb.ring_b[row, pos])
    times, sizes = window_t[:3], window_b[:3]
    order = np.argsort(times)  # late records may have arrived out of order
    times, sizes = times[order], sizes[order]
    gates = three_connection_gates(
        times, sizes, limits.sparse_min_interval_ms / 1000.0, policy.sparse_max_deviation,
        SIZE_SPREAD_LN, MIN_BYTES, True,
    )  # fmt: skip
    if gates != ALL_GATES:
        return
    sources, share, _ = _prevalence(sketch, nonzero, tb.keys, tb.port_proto, row, policy)
    if sources > 1:  # another internal host reaches it: not a new destination
        return
    mean_s = 0.5 * (times[2] - times[0])
    k = counters[CNT_ALERTS]
    alert_rows[k] = row
    alert_stats[k, :] = 0.0
    alert_stats[k, Stat.SCORE] = SPARSE_SCORE
    alert_stats[k, Stat.CONNECTIONS] = 3
    for s in (Stat.PERIOD_S, Stat.MEAN_INTERVAL_S, Stat.MEDIAN_INTERVAL_S):
        alert_stats[k, s] = mean_s
    low_s = min(times[1] - times[0], times[2] - times[1])
    high_s = max(times[1] - times[0], times[2] - times[1])
    alert_stats[k, Stat.LOW_S] = low_s
    alert_stats[k, Stat.HIGH_S] = high_s
    alert_stats[k, Stat.JITTER_RATIO] = (high_s - low_s) / high_s if high_s > 0.0 else 0.0
    alert_stats[k, Stat.BYTES_MEDIAN] = np.median(sizes)
    alert_extra[k, :] = 0.0
    alert_extra[k, EXTRA_LIFECYCLE] = LIFECYCLE_NEW
    alert_extra[k, EXTRA_KIND] = KIND_SPARSE_BEACON
    alert_extra[k, EXTRA_PREVALENCE_SOURCES] = sources
    alert_extra[k, EXTRA_PREVALENCE] = share
    alert_extra[k, EXTRA_PREVALENCE_FACTOR] = 1.0
    alert_extra[k, EXTRA_RAW_SCORE] = SPARSE_SCORE
    alert_extra[k, EXTRA_CHECK_INS] = tb.n_connections[row]
    alert_extra[k, EXTRA_PER_CHECK_IN] = 1.0
    alert_times[k, AT_DETECTED_MS] = epoch + np.int64(times[2] * 1000.0)
    alert_times[k, AT_WINDOW_START_MS] = epoch + np.int64(times[0] * 1000.0)
    alert_times[k, AT_WINDOW_END_MS] = epoch + np.int64(times[2] * 1000.0)
    alert_times[k, AT_FIRST_ALERT_MS] = alert_times[k, AT_DETECTED_MS]
    alert_times[k, AT_FIRST_SEEN_MS] = tb.first_seen_ms[row]
    counters[CNT_ALERTS] += 1


@njit(cache=True, nogil=True)
def _slow_and_enough(connections: np.int64, seen_for_ms: np.int64, limits: Limits) -> bool:
    """A slow pair with enough connections to score before min_events: at least
    min_events_slow of them, at most one per slow_interval_s on average since the first."""
    return bool(
        connections >= limits.min_events_slow
        and seen_for_ms >= (connections - 1) * limits.slow_interval_ms
    )


@njit(cache=True, nogil=True)
def _in_ring(ring_t: U32, row: int, count: int, start: np.uint32) -> bool:
    """Whether a connection in the pair's ring starts at ``start`` (its ring time)."""
    for k in range(min(count, ring_t.shape[1])):  # noqa: SIM110 (a loop numba compiles)
        if ring_t[row, k] == start:
            return True
    return False


@njit(cache=True, nogil=True)
def _note_server_side(
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
def _described_range(stats: F64) -> tuple[float, float]:
    return described_range(
        stats[Stat.PERIOD_S], stats[Stat.JITTER_RATIO], int(stats[Stat.JITTER_SHAPE])
    )


@njit(cache=True, nogil=True)
def _next_period_check(connections: int, history: int) -> float:
    """Connection count of an alerted pair's next period check: twice as many, at most a
    full ring; 0 (none) once the ring is full."""
    return float(min(2 * connections, history)) if connections < history else 0.0


@njit(cache=True, nogil=True)
def backoff_events(connections: int, limits: Limits, history: int) -> int:
    """Extra connections before a pair with nothing to report is scored again."""
    return int(min(max(limits.rescore_every, connections // 4), history))


@njit(cache=True, nogil=True)
def ingest(
    # the partition's pair table, written in place
    tb: TableColumns,
    # the process's prevalence sketch
    sketch: U32, nonzero: I64,
    # flows
    start_ms: I64, end_ms: I64, src_hi: U64, src_lo: U64, dst_hi: U64, dst_lo: U64,
    src_port: U16, dst_port: U16, proto: U8, nbytes: U64, sampling_rate: U32, initiator: U8,
    # parameters
    limits: Limits, score_params: F64, null_tables: F64, policy: Policy,
    # outputs
    status: U8, feed: U8, counters: I64, alert_rows: I32, alert_stats: F64, alert_times: I64,
    alert_extra: F64,
) -> None:  # fmt: skip
    """Ingest flows in order; fills `status` per flow and one output row per alert.

    With prefix channels (``tb.channels``, `state.channel_index`, not empty), the exact pass
    (level 0) sets ``feed`` to 1 for the flows of promoted channels, the prefix pass's input,
    and promotes channels at their second IP; the prefix pass keeps the index on its rows.

    A flow is too late when it ended (could last have been exported) more than the allowed
    lateness before the watermark; the watermark itself is moved by the caller
    (`core.watermark`), so the verdicts do not depend on the order within a batch."""
    history = tb.ring_t.shape[1]
    oldest_export = limits.watermark_ms - limits.lateness_ms
    epoch = tb.meta[1]
    level = np.uint32(limits.level)
    stats = np.empty(N_STATS, dtype=np.float64)
    extra = np.zeros(EXTRA_SIZE, dtype=np.float64)
    window_t = np.empty(history, dtype=np.float64)
    window_b = np.empty(history, dtype=np.float64)
    scratch = np.empty(history, dtype=np.float64)
    work = new_workspace(history)
    # Only alerts report the statistics a score of 0 does not need, and with a threshold
    # above 0 a window scored 0 never alerts.
    lean = policy.threshold > 0.0
    for i in range(start_ms.shape[0]):
        t = start_ms[i]
        # Before the epoch a start time cannot be stored (only data older than a whole window
        # before the first batch of another partition gets here).
        if max(t, end_ms[i]) < oldest_export or t < epoch:
            status[i] = TOO_LATE
            continue
        if t > limits.max_start_ms:
            status[i] = TOO_FAR_FUTURE
            continue
        if t - epoch >= np.int64(U32_MAX):
            status[i] = BEYOND_RING
            continue
        status[i] = ACCEPTED
        counters[CNT_ACCEPTED] += 1

        pp = np.uint32((np.uint32(dst_port[i]) << np.uint32(8)) | np.uint32(proto[i]))
        pp = np.uint32(pp | level)
        h = key_hash(src_hi[i], src_lo[i], dst_hi[i], dst_lo[i], pp)
        slot = find_slot(
            tb.hash_slots, tb.keys, tb.port_proto, h, src_hi[i], src_lo[i], dst_hi[i], dst_lo[i], pp
        )
        row = tb.hash_slots[slot]
        if row == EMPTY:
            if tb.meta[0] == 0:
                evicted, established = evict_least_recent(
                    tb.hash_slots, tb.keys, tb.port_proto, tb.free, tb.used, tb.meta, sketch,
                    nonzero, tb.last_seen_ms, tb.n_connections, limits.evict_batch,
                    limits.window_ms,
                )  # fmt: skip
                counters[CNT_EVICTED_CAPACITY] += evicted
                counters[CNT_EVICTED_ESTABLISHED] += established
                # Eviction shifted the index: look the slot up again.
                slot = find_slot(
                    tb.hash_slots, tb.keys, tb.port_proto, h, src_hi[i], src_lo[i], dst_hi[i],
                    dst_lo[i], pp,
                )  # fmt: skip
            tb.meta[0] -= 1
            row = tb.free[tb.meta[0]]
            tb.used[row] = True
            tb.hash_slots[slot] = row
            tb.keys[row, 0] = src_hi[i]
            tb.keys[row, 1] = src_lo[i]
            tb.keys[row, 2] = dst_hi[i]
            tb.keys[row, 3] = dst_lo[i]
            tb.port_proto[row] = pp
            tb.first_seen_ms[row] = t
            tb.last_seen_ms[row] = t
            tb.scored_ms[row] = t
            tb.alert_ms[row] = NEVER_MS
            tb.first_alert_ms[row] = NEVER_MS
            tb.n_connections[row] = 0
            tb.scored_count[row] = 0
            tb.alerted[row, :] = 0.0
            tb.sampling[row] = 1
            tb.direction_inferred[row] = 0
            tb.long_alert_ms[row] = NEVER_MS
            tb.long_sessions[row] = 0
            for c in range(tb.conn_times.shape[1]):
                tb.conn_times[row, c, 0] = np.uint32(0xFFFF_FFFF)
            add_pair(sketch, nonzero, tb.keys, pp, row, 1)
            counters[CNT_NEW_PAIRS] += 1
        if tb.channels.shape[0] > 0:
            # Prefix channels (`state.channel_index`): the ordinary flow, of a channel's one
            # pair, costs a hash and a look at one bucket; the rest is out of line.
            if level == 0:
                net_hi, net_lo = mask_destination(dst_hi[i], dst_lo[i])
                prefix_pp = np.uint32(pp | PREFIX_LEVEL_U32)
                hc = key_hash(src_hi[i], src_lo[i], net_hi, net_lo, prefix_pp)
                if not listed(tb.channels, bucket_of(tb.channels, hc), tagged(hc, row)):
                    source, entry = route(
                        tb.channels, tb.hash_slots, tb.keys, tb.port_proto, tb.used,
                        tb.last_seen_ms, hc, row, src_hi[i], src_lo[i], net_hi, net_lo, pp,
                    )  # fmt: skip
                    if source != NOT_FED:
                        feed[i] = 1
                    if source >= 0:  # a second IP: promoted
                        seed_prefix_row(
                            tb, sketch, nonzero, entry, source, hc, src_hi[i], src_lo[i], net_hi,
                            net_lo, prefix_pp, NEVER_MS,
                        )  # fmt: skip
            elif level == PREFIX_LEVEL_U32 and not listed(
                tb.channels, bucket_of(tb.channels, h), tagged(h, row)
            ):
                register(tb.channels, tb.keys, tb.port_proto, tb.used, tb.last_seen_ms, h, row)

        if initiator[i] != INITIATOR_SRC:  # the record did not say who started it (`core.scope`)
            tb.direction_inferred[row] = np.uint8(tb.direction_inferred[row] | INFERRED)
        rate = min(sampling_rate[i], np.uint32(0xFFFF))
        if rate > tb.sampling[row]:
            tb.sampling[row] = rate
        if t > tb.last_seen_ms[row]:
            tb.last_seen_ms[row] = t
        rel = max(np.int64(0), t - epoch)
        rel_end = min(max(rel, end_ms[i] - epoch), np.int64(U32_MAX) - 1)
        kind, c = match_connection(
            tb.conn_port, tb.conn_times, row, int(src_port[i]), int(rel), int(rel_end),
            int(limits.duplicate_tolerance_ms), int(limits.continuation_gap_ms),
        )  # fmt: skip
        # A piece of a known connection, which may now be long.
        piece = kind != NEW_CONNECTION
        if piece and _newly_long(tb.conn_times, row, c, epoch, tb.long_alert_ms, limits):
            _long_connection(
                tb, row, c, epoch, sketch, nonzero, limits, policy, counters, alert_rows,
                alert_stats, alert_times, alert_extra,
            )  # fmt: skip
        if kind == DUPLICATE:
            counters[CNT_DUPLICATES] += 1
            continue
        if kind == CONTINUATION:
            counters[CNT_CONTINUATIONS] += 1
            seq = np.int64(tb.conn_times[row, c, SEQ])
            in_ring = np.int64(tb.n_connections[row]) - seq <= history
            if in_ring:  # the connection is still in the ring
                pos = seq % history
                tb.ring_b[row, pos] = encode_size(decode_size(tb.ring_b[row, pos]) + nbytes[i])
            continue
        # A late record starting at the very millisecond of a connection still in the ring
        # repeats it, however many connections came since: a collector that publishes a cache
        # purge twice, an exporter that lags by minutes.
        ring_start = np.uint32(min(np.uint64(rel), U32_MAX))
        if t < tb.last_seen_ms[row] and _in_ring(
            tb.ring_t, row, int(tb.n_connections[row]), ring_start
        ):
            counters[CNT_DUPLICATES] += 1
            continue
        if proto[i] == TCP and initiator[i] == INITIATOR_TURNED:
            _note_server_side(
                tb.direction_inferred, tb.conn_port, tb.conn_times, row, int(src_port[i])
            )
        remember_connection(tb.conn_port, tb.conn_times, row, c, int(src_port[i]), int(rel),
                            int(rel_end), int(tb.n_connections[row]))  # fmt: skip
        if _newly_long(tb.conn_times, row, c, epoch, tb.long_alert_ms, limits):
            _long_connection(
                tb, row, c, epoch, sketch, nonzero, limits, policy, counters, alert_rows,
                alert_stats, alert_times, alert_extra,
            )  # fmt: skip
        pos = tb.n_connections[row] % history
        tb.ring_t[row, pos] = ring_start
        tb.ring_b[row, pos] = encode_size(np.float64(nbytes[i]))
        tb.n_connections[row] += 1
        if t < tb.first_seen_ms[row]:
            tb.first_seen_ms[row] = t

        n = np.int64(tb.n_connections[row])
        if tb.direction_inferred[row] & SERVER_SIDE:  # inbound-initiated: never the host's beacon
            continue
        if n == 3 and limits.sparse_min_interval_ms > 0 and limits.level == 0:
            _sparse_beacon(tb, row, epoch, sketch, nonzero, limits, policy, counters, alert_rows,
                           alert_stats, alert_times, alert_extra, window_t, window_b)  # fmt: skip
        if n < limits.min_events and not _slow_and_enough(n, t - tb.first_seen_ms[row], limits):
            continue
        # An alert from a part-filled ring (as few as min_events connections) reads the
        # sleep from few intervals. Its period is checked again each time the pair's
        # connections double, until the ring is full: a described sleep range that moved is
        # an update even within the cooldown (at most log2(history / min_events) checks).
        refine_at = int(tb.alerted[row, ALERTED_REFINE_AT])
        refining = bool(refine_at > 0 and n >= refine_at)
        # Otherwise no alert can follow within the cooldown after an alert, so the pair is not
        # scored: a beacon that has alerted costs no scoring until its cooldown is over.
        if not refining:
            if tb.alert_ms[row] != NEVER_MS and t - tb.alert_ms[row] < limits.cooldown_ms:
                continue
            if (
                n - np.int64(tb.scored_count[row]) < limits.rescore_every
                and t - tb.scored_ms[row] < limits.rescore_interval_ms
            ):
                continue
        first_rel, last_rel, per_check_in = _score_row(
            tb.ring_t, tb.ring_b, tb.n_connections, row, rel - limits.window_ms,
            rel - limits.long_window_ms, score_params[1 if tb.sampling[row] > 1 else 0],
            null_tables, stats, window_t, window_b, work, scratch, lean, int(tb.sampling[row]),
        )  # fmt: skip
        _apply_prevalence(stats, extra, sketch, nonzero, tb.keys, tb.port_proto, row, policy)
        extra[EXTRA_PER_CHECK_IN] = per_check_in
        tb.scored_count[row] = tb.n_connections[row]
        tb.scored_ms[row] = t
        counters[CNT_SCORED] += 1
        if refining:
            tb.alerted[row, ALERTED_REFINE_AT] = _next_period_check(int(n), history)
        lifecycle = _lifecycle(stats, t, tb.alert_ms, tb.alerted, row, limits, policy, refining)
        if lifecycle == 0:
            if stats[Stat.SCORE] <= 0.0 or tb.alert_ms[row] != NEVER_MS:
                # No evidence of periodicity at all (most busy benign pairs), or an alerted
                # pair that has not changed: the next scoring waits longer, by a quarter of
                # the pair's connections (a chatty pair need not be rescored every few),
                # at most a whole ring, and twice the interval.
                tb.scored_count[row] = tb.n_connections[row] + np.uint32(
                    backoff_events(int(n), limits, history)
                )
                tb.scored_ms[row] = t + limits.rescore_interval_ms
            continue
        if lifecycle == LIFECYCLE_NEW:
            tb.first_alert_ms[row] = t
        tb.alert_ms[row] = t
        tb.alerted[row, ALERTED_MEAN_S] = stats[Stat.MEAN_INTERVAL_S]
        tb.alerted[row, ALERTED_SCORE] = stats[Stat.SCORE]
        tb.alerted[row, ALERTED_LOW_S], tb.alerted[row, ALERTED_HIGH_S] = _described_range(stats)
        tb.alerted[row, ALERTED_REFINE_AT] = _next_period_check(int(n), history)
        extra[EXTRA_LIFECYCLE] = lifecycle
        extra[EXTRA_CHECK_INS] = tb.n_connections[row]
        extra[EXTRA_KIND] = KIND_BEACON
        k = counters[CNT_ALERTS]
        alert_rows[k] = row
        alert_stats[k, :] = stats
        alert_extra[k, :] = extra
        alert_times[k, AT_DETECTED_MS] = t
        alert_times[k, AT_WINDOW_START_MS] = epoch + first_rel
        alert_times[k, AT_WINDOW_END_MS] = epoch + last_rel
        alert_times[k, AT_FIRST_ALERT_MS] = tb.first_alert_ms[row]
        alert_times[k, AT_FIRST_SEEN_MS] = tb.first_seen_ms[row]
        counters[CNT_ALERTS] += 1


@njit(cache=True, nogil=True)
def score_rows(
    tb: TableColumns, sketch: U32, nonzero: I64, window_ms: int, long_window_ms: int,
    score_params: F64, null_tables: F64, policy: Policy, rows_out: I32, stats_out: F64,
    extra_out: F64,
) -> int:  # fmt: skip
    """Score every tracked pair on its window ending at its last connection.

    Fills ``rows_out[:k]``, ``stats_out[:k]``, ``extra_out[:k]``; returns ``k``, the number of
    tracked pairs.
    """
    history = tb.ring_t.shape[1]
    window_t = np.empty(history, dtype=np.float64)
    window_b = np.empty(history, dtype=np.float64)
    scratch = np.empty(history, dtype=np.float64)
    work = new_workspace(history)
    epoch = tb.meta[1]
    k = 0
    for row in range(tb.used.shape[0]):
        if not tb.used[row]:
            continue
        last_rel = tb.last_seen_ms[row] - epoch
        params = score_params[1 if tb.sampling[row] > 1 else 0]
        _, _, per_check_in = _score_row(
            tb.ring_t, tb.ring_b, tb.n_connections, row, last_rel - window_ms,
            last_rel - long_window_ms, params, null_tables, stats_out[k], window_t, window_b,
            work, scratch, False, int(tb.sampling[row]),
        )  # fmt: skip
        extra_out[k, EXTRA_PER_CHECK_IN] = per_check_in
        _apply_prevalence(stats_out[k], extra_out[k], sketch, nonzero, tb.keys, tb.port_proto, row,
                          policy)  # fmt: skip
        extra_out[k, EXTRA_CHECK_INS] = tb.n_connections[row]
        rows_out[k] = row
        k += 1
    return k
