"""The per-record kernel, a loop over flows through named steps, each on the columns it
touches (`ingest_steps`, `window`):

    event_time_verdict -> find_slot | claim_row + reset_row -> (prefix channels) -> note_flow
    -> match_connection: duplicate | continuation (add_piece_bytes) | new connection
    -> remember_connection, append_to_ring -> (rule sparse-beacon) -> due_for_scoring
    -> score_row -> prevalence and lifecycle (`alerting.policy`), the pair's alert state

The last, the decision after a scoring, stays in the loop: as a step of its own (with the
alert rows and the 8 columns it writes) it cost 2-5 % of throughput, inlined or not.

A pair is scored at the connection that makes it due: once it has ``min_events`` connections,
after every ``rescore_every_events`` new ones, or when a connection arrives at least
``rescore_interval_ms`` after the last scoring (twice as many, or twice as long, after a
score of 0 or a scoring of an alerted pair that changed nothing); never within the cooldown
after its last alert, but for its period checks. Deciding per connection (not per batch) makes
the alerts independent of how records were batched, so `scan` on a file and the Kafka service
on the same flows give the same alerts. A pair is never re-scored on every record: a full window
costs microseconds, and doing it per record would cap throughput far below the pipeline target.

Records that repeat or continue a known connection (`connections`) update it but add no new
start. Prevalence down-ranking, the alert lifecycle and the one-off rules' alerts are
`alerting.policy`'s, given the pair's state as scalars (the rules' bookkeeping: `pair_rules`).

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

from beaconwatch.alerting.policy import (
    Policy,
    apply_prevalence,
    backoff_events,
    described_sleep_range,
    lifecycle,
    next_period_check,
)
from beaconwatch.domain.alert_rows import (
    KIND_BEACON,
    LIFECYCLE_NEW,
    AlertRows,
)
from beaconwatch.domain.dtypes import F64, I64, U8, U16, U32, U64, AnyArray
from beaconwatch.domain.flows import INITIATOR_TURNED
from beaconwatch.scoring.window_score import (
    N_STATS,
    Stat,
    new_workspace,
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
    NEW_CONNECTION,
    match_connection,
    remember_connection,
)  # fmt: skip
from beaconwatch.state.hash_index import EMPTY, find_slot, key_hash
from beaconwatch.state.ingest_steps import (
    ACCEPTED,
    DUE_PERIOD_CHECK,
    NEVER_MS,
    NOT_DUE,
    U32_MAX,
    add_piece_bytes,
    append_to_ring,
    claim_row,
    due_for_scoring,
    event_time_verdict,
    in_ring,
    note_flow,
    note_server_side,
    reset_row,
)
from beaconwatch.state.kernel_params import Limits
from beaconwatch.state.kernel_typeof import register_kernel_types
from beaconwatch.state.levels import PREFIX_LEVEL_U32, mask_destination
from beaconwatch.state.pair_rules import long_connection_alert, newly_long, sparse_beacon_alert
from beaconwatch.state.pair_table import (
    ALERTED_HIGH_S,
    ALERTED_LOW_S,
    ALERTED_MEAN_S,
    ALERTED_REFINE_AT,
    ALERTED_SCORE,
    SERVER_SIDE,
)
from beaconwatch.state.prevalence import pair_fanout, pair_prevalence
from beaconwatch.state.table_columns import TableColumns
from beaconwatch.state.window import score_row

register_kernel_types()

TCP = 6


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
    status: U8, feed: U8, counters: AnyArray, alerts: AlertRows,
) -> None:  # fmt: skip
    """Ingest flows in order; fills `status` per flow, the kernel's columns of ``alerts`` (one
    row per alert, `domain.alert_rows`) and adds to ``counters`` (`state.kernel_counters`).

    With prefix channels (``tb.channels``, `state.channel_index`, not empty), the exact pass
    (level 0) sets ``feed`` to 1 for the flows of promoted channels, the prefix pass's input,
    and promotes channels at their second IP; the prefix pass keeps the index on its rows.

    A flow is too late when it ended (could last have been exported) more than the allowed
    lateness before the watermark; the watermark itself is moved by the caller
    (`core.watermark`), so the verdicts do not depend on the order within a batch."""
    # The table's columns as locals, read out of ``tb`` once (in `TableColumns` order):
    # numba increfs an array each time it is read out of a tuple (``tb.x``), in the loop per flow.
    (
        hash_slots, keys, port_proto, first_seen_ms, last_seen_ms, scored_ms, alert_ms,
        first_alert_ms, n_connections, scored_count, alerted, sampling, direction_inferred,
        long_alert_ms, long_sessions, ring_t, ring_b, conn_port, conn_times, free, used, meta,
        channels,
    ) = tb  # fmt: skip
    history = ring_t.shape[1]
    oldest_export = limits.watermark_ms - limits.lateness_ms
    epoch = meta[1]
    level = np.uint32(limits.level)
    stats = np.empty(N_STATS, dtype=np.float64)
    window_t = np.empty(history, dtype=np.float64)
    window_b = np.empty(history, dtype=np.float64)
    scratch = np.empty(history, dtype=np.float64)
    work = new_workspace(history)
    # Only alerts report the statistics a score of 0 does not need, and with a threshold
    # above 0 a window scored 0 never alerts.
    lean = policy.threshold > 0.0
    for i in range(start_ms.shape[0]):
        t = start_ms[i]
        status[i] = event_time_verdict(t, end_ms[i], oldest_export, epoch, limits.max_start_ms)
        if status[i] != ACCEPTED:
            continue
        counters[0]["accepted"] += 1

        pp = np.uint32((np.uint32(dst_port[i]) << np.uint32(8)) | np.uint32(proto[i]))
        pp = np.uint32(pp | level)
        h = key_hash(src_hi[i], src_lo[i], dst_hi[i], dst_lo[i], pp)
        slot = find_slot(
            hash_slots, keys, port_proto, h, src_hi[i], src_lo[i], dst_hi[i], dst_lo[i], pp
        )
        row = hash_slots[slot]
        if row == EMPTY:
            row = claim_row(
                hash_slots, keys, port_proto, free, used, meta, sketch, nonzero, last_seen_ms,
                n_connections, limits, counters, h, slot, src_hi[i], src_lo[i], dst_hi[i],
                dst_lo[i], pp,
            )  # fmt: skip
            reset_row(
                first_seen_ms, last_seen_ms, scored_ms, alert_ms, first_alert_ms, n_connections,
                scored_count, alerted, sampling, direction_inferred, long_alert_ms,
                long_sessions, conn_times, row, t,
            )  # fmt: skip
        if channels.shape[0] > 0:
            # Prefix channels (`state.channel_index`): the ordinary flow, of a channel's one
            # pair, costs a hash and a look at one bucket; the rest is out of line.
            if level == 0:
                net_hi, net_lo = mask_destination(dst_hi[i], dst_lo[i])
                prefix_pp = np.uint32(pp | PREFIX_LEVEL_U32)
                hc = key_hash(src_hi[i], src_lo[i], net_hi, net_lo, prefix_pp)
                if not listed(channels, bucket_of(channels, hc), tagged(hc, row)):
                    source, entry = route(
                        channels, hash_slots, keys, port_proto, used,
                        last_seen_ms, hc, row, src_hi[i], src_lo[i], net_hi, net_lo, pp,
                    )  # fmt: skip
                    if source != NOT_FED:
                        feed[i] = 1
                    if source >= 0:  # a second IP: promoted
                        seed_prefix_row(
                            tb, sketch, nonzero, entry, source, hc, src_hi[i], src_lo[i], net_hi,
                            net_lo, prefix_pp, NEVER_MS,
                        )  # fmt: skip
            elif level == PREFIX_LEVEL_U32 and not listed(
                channels, bucket_of(channels, h), tagged(h, row)
            ):
                register(channels, keys, port_proto, used, last_seen_ms, h, row)

        note_flow(
            direction_inferred, sampling, last_seen_ms, row, initiator[i], sampling_rate[i], t
        )
        rel = max(np.int64(0), t - epoch)
        rel_end = min(max(rel, end_ms[i] - epoch), np.int64(U32_MAX) - 1)
        # Sampled export drops whole active-timeout pieces: a wider gap still continues.
        sampled = sampling[row] > 1
        gap_ms = limits.sampled_continuation_gap_ms if sampled else limits.continuation_gap_ms
        kind, c = match_connection(
            conn_port, conn_times, row, int(src_port[i]), int(rel), int(rel_end),
            int(limits.duplicate_tolerance_ms), int(gap_ms),
        )  # fmt: skip
        # A piece of a known connection, which may now be long.
        piece = kind != NEW_CONNECTION
        if piece and newly_long(conn_times, row, c, epoch, long_alert_ms, limits):
            long_connection_alert(
                conn_times, long_alert_ms, long_sessions, n_connections, first_seen_ms, keys,
                port_proto, row, c, epoch, sketch, nonzero, limits, policy, counters, alerts,
            )  # fmt: skip
        if kind == DUPLICATE:
            counters[0]["duplicates"] += 1
            continue
        if kind == CONTINUATION:
            counters[0]["continuations"] += 1
            add_piece_bytes(ring_b, conn_times, n_connections, row, c, nbytes[i])
            continue
        # A late record starting at the very millisecond of a connection still in the ring
        # repeats it, however many connections came since: a collector that publishes a cache
        # purge twice, an exporter that lags by minutes.
        ring_start = np.uint32(min(np.uint64(rel), U32_MAX))
        if t < last_seen_ms[row] and in_ring(ring_t, row, int(n_connections[row]), ring_start):
            counters[0]["duplicates"] += 1
            continue
        if proto[i] == TCP and initiator[i] == INITIATOR_TURNED:
            note_server_side(direction_inferred, conn_port, conn_times, row, int(src_port[i]))
        remember_connection(conn_port, conn_times, row, c, int(src_port[i]), int(rel),
                            int(rel_end), int(n_connections[row]))  # fmt: skip
        if newly_long(conn_times, row, c, epoch, long_alert_ms, limits):
            long_connection_alert(
                conn_times, long_alert_ms, long_sessions, n_connections, first_seen_ms, keys,
                port_proto, row, c, epoch, sketch, nonzero, limits, policy, counters, alerts,
            )  # fmt: skip
        n = append_to_ring(ring_t, ring_b, n_connections, first_seen_ms, row, ring_start,
                           nbytes[i], t)  # fmt: skip
        if direction_inferred[row] & SERVER_SIDE:  # inbound-initiated: never the host's beacon
            continue
        if n == 3 and limits.sparse_min_interval_ms > 0 and limits.level == 0:
            sparse_beacon_alert(
                ring_t, ring_b, n_connections, first_seen_ms, keys, port_proto, row, epoch,
                sketch, nonzero, limits, policy, counters, alerts, window_t, window_b,
            )  # fmt: skip
        due = due_for_scoring(
            int(n), t, first_seen_ms[row], alert_ms[row], int(scored_count[row]),
            scored_ms[row], int(alerted[row, ALERTED_REFINE_AT]), limits,
        )  # fmt: skip
        if due == NOT_DUE:
            continue
        refining = due == DUE_PERIOD_CHECK
        first_rel, last_rel, per_check_in = score_row(
            ring_t, ring_b, n_connections, row, rel - limits.window_ms,
            rel - limits.long_window_ms, score_params[1 if sampling[row] > 1 else 0],
            null_tables, stats, window_t, window_b, work, scratch, lean, int(sampling[row]),
        )  # fmt: skip
        k = counters[0]["alerts"]  # the row an alert of this scoring takes
        sources, fleet = pair_prevalence(sketch, nonzero, keys, port_proto, row)
        fanout = pair_fanout(sketch, keys, port_proto, row)
        apply_prevalence(stats, alerts, k, sources, fleet, fanout, policy)
        scored_count[row] = n_connections[row]
        scored_ms[row] = t
        counters[0]["scored"] += 1
        if refining:
            alerted[row, ALERTED_REFINE_AT] = next_period_check(int(n), history)
        verdict = lifecycle(
            stats, t, alert_ms[row] != NEVER_MS, alert_ms[row],
            np.float64(alerted[row, ALERTED_MEAN_S]), np.float64(alerted[row, ALERTED_SCORE]),
            np.float64(alerted[row, ALERTED_LOW_S]), np.float64(alerted[row, ALERTED_HIGH_S]),
            limits.cooldown_ms, policy, refining,
        )  # fmt: skip
        if verdict == 0:
            if stats[Stat.SCORE] <= 0.0 or alert_ms[row] != NEVER_MS:
                # No evidence of periodicity at all (most busy benign pairs), or an alerted
                # pair that has not changed: the next scoring waits longer, by a quarter of
                # the pair's connections (a chatty pair need not be rescored every few),
                # at most a whole ring, and twice the interval.
                scored_count[row] = n_connections[row] + np.uint32(
                    backoff_events(int(n), limits.rescore_every, history)
                )
                scored_ms[row] = t + limits.rescore_interval_ms
            continue
        if verdict == LIFECYCLE_NEW:
            first_alert_ms[row] = t
        alert_ms[row] = t
        alerted[row, ALERTED_MEAN_S] = stats[Stat.MEAN_INTERVAL_S]
        alerted[row, ALERTED_SCORE] = stats[Stat.SCORE]
        alerted[row, ALERTED_LOW_S], alerted[row, ALERTED_HIGH_S] = described_sleep_range(stats)
        alerted[row, ALERTED_REFINE_AT] = next_period_check(int(n), history)
        alerts.row[k] = row
        alerts.stats[k, :] = stats
        alerts.lifecycle[k] = verdict
        alerts.kind[k] = KIND_BEACON
        alerts.duration_s[k] = 0.0
        alerts.check_ins[k] = n_connections[row]
        alerts.per_check_in[k] = per_check_in
        alerts.detected_ms[k] = t
        alerts.window_start_ms[k] = epoch + first_rel
        alerts.window_end_ms[k] = epoch + last_rel
        alerts.first_alert_ms[k] = first_alert_ms[row]
        alerts.first_seen_ms[k] = first_seen_ms[row]
        counters[0]["alerts"] += 1


@njit(cache=True, nogil=True)
def score_rows(
    tb: TableColumns, sketch: U32, nonzero: I64, window_ms: int, long_window_ms: int,
    score_params: F64, null_tables: F64, policy: Policy, out: AlertRows,
) -> int:  # fmt: skip
    """Score every tracked pair on its window ending at its last connection.

    Fills the first ``k`` rows of ``out``'s row, statistics, prevalence, check-ins and
    connections per check-in; returns ``k``, the number of tracked pairs.
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
        _, _, per_check_in = score_row(
            tb.ring_t, tb.ring_b, tb.n_connections, row, last_rel - window_ms,
            last_rel - long_window_ms, params, null_tables, out.stats[k], window_t, window_b,
            work, scratch, False, int(tb.sampling[row]),
        )  # fmt: skip
        out.per_check_in[k] = per_check_in
        sources, fleet = pair_prevalence(sketch, nonzero, tb.keys, tb.port_proto, row)
        fanout = pair_fanout(sketch, tb.keys, tb.port_proto, row)
        apply_prevalence(out.stats[k], out, k, sources, fleet, fanout, policy)
        out.check_ins[k] = tb.n_connections[row]
        out.row[k] = row
        k += 1
    return k
