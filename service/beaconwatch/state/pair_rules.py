"""The table's side of the two one-off rules (numba): when a connection is newly long, the
pair's long-session count, and the three connections rule sparse-beacon reads from the ring.

Whether they alert, and their alert rows, are `alerting.policy`'s: these read and keep the
pair's state and hand it the scalars and windows it decides on (`state` may import
`alerting`, never the other way round).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.alerting.policy import (
    SPARSE_SCORE,
    Policy,
    long_connection_score,
    prevalence,
    rule_alert,
    sparse_beacon_gates,
    sparse_beacon_stats,
)
from beaconwatch.domain.alert_rows import KIND_LONG_CONNECTION, KIND_SPARSE_BEACON, AlertRows
from beaconwatch.domain.dtypes import F64, I64, U16, U32, U64, AnyArray
from beaconwatch.scoring.window_score import Stat
from beaconwatch.state.connections import END, START
from beaconwatch.state.kernel_params import Limits
from beaconwatch.state.pair_table import NEVER_MS
from beaconwatch.state.prevalence import pair_prevalence
from beaconwatch.state.size_codec import decode_size


@njit(cache=True, nogil=True, inline="always")
def newly_long(
    conn_times: U32, row: int, slot: int, epoch: int, long_alert_ms: I64, limits: Limits
) -> bool:
    """Whether the connection in ``slot`` just reached long_connection_s (and was not counted
    yet): checked for every flow, so cheap and inlined; the rest is `long_connection_alert`."""
    min_ms = limits.long_connection_ms
    start = np.int64(conn_times[row, slot, START])
    return bool(
        min_ms > 0
        and np.int64(conn_times[row, slot, END]) - start >= min_ms
        and long_alert_ms[row] != epoch + start
    )


@njit(cache=True, nogil=True)
def long_connection_alert(
    conn_times: U32, long_alert_ms: I64, long_sessions: U16, n_connections: U32,
    first_seen_ms: I64, keys: U64, port_proto: U32, row: int, slot: int, epoch: int,
    sketch: U32, nonzero: I64, limits: Limits, policy: Policy, counters: AnyArray,
    alerts: AlertRows,
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
    start = np.int64(conn_times[row, slot, START])
    end = np.int64(conn_times[row, slot, END])
    if end - start < min_ms or long_alert_ms[row] == epoch + start:
        return
    previous = long_alert_ms[row]
    if previous != NEVER_MS and epoch + start - previous <= limits.window_ms:
        long_sessions[row] = min(long_sessions[row] + 1, 0xFFFF)
    else:
        long_sessions[row] = 1
    long_alert_ms[row] = epoch + start
    if long_sessions[row] < limits.long_sessions:
        return
    sources, fleet = pair_prevalence(sketch, nonzero, keys, port_proto, row)
    share, factor = prevalence(sources, fleet, policy)
    if factor < 1.0:  # a destination prevalence down-ranks: not rare
        return
    k = counters[0]["alerts"]
    rule_alert(
        alerts, k, row, KIND_LONG_CONNECTION, long_connection_score(int(end - start), min_ms),
        sources, share, (end - start) / 1000.0, epoch + start, epoch + end, epoch + start,
        n_connections[row], first_seen_ms[row],
    )  # fmt: skip
    alerts.stats[k, Stat.CONNECTIONS] = long_sessions[row]
    counters[0]["alerts"] += 1


@njit(cache=True, nogil=True)
def sparse_beacon_alert(
    ring_t: U32, ring_b: U16, n_connections: U32, first_seen_ms: I64, keys: U64,
    port_proto: U32, row: int, epoch: int, sketch: U32, nonzero: I64, limits: Limits,
    policy: Policy, counters: AnyArray, alerts: AlertRows, window_t: F64, window_b: F64,
) -> None:  # fmt: skip
    """Rule sparse-beacon, at a pair's third connection: a daily beacon has only 3 check-ins
    in the long window, too few for any interval test (two intervals: p = r at best). It
    alerts, once, as a hunting lead when every gate of `scoring.daily` passes
    (`alerting.policy.sparse_beacon_gates`) and no other internal host reaches the
    destination; evaluation.daily_windows counts what passes on benign traffic."""
    history = ring_t.shape[1]
    for j in range(3):
        pos = (n_connections[row] - 3 + j) % history
        window_t[j] = ring_t[row, pos] / 1000.0
        window_b[j] = decode_size(ring_b[row, pos])
    times, sizes = window_t[:3], window_b[:3]
    order = np.argsort(times)  # late records may have arrived out of order
    times, sizes = times[order], sizes[order]
    if not sparse_beacon_gates(times, sizes, limits.sparse_min_interval_ms / 1000.0, policy):
        return
    sources, fleet = pair_prevalence(sketch, nonzero, keys, port_proto, row)
    share, _ = prevalence(sources, fleet, policy)
    if sources > 1:  # another internal host reaches it: not a new destination
        return
    detected_ms = epoch + np.int64(times[2] * 1000.0)
    k = counters[0]["alerts"]
    rule_alert(
        alerts, k, row, KIND_SPARSE_BEACON, SPARSE_SCORE, sources, share, 0.0,
        epoch + np.int64(times[0] * 1000.0), detected_ms, detected_ms, n_connections[row],
        first_seen_ms[row],
    )  # fmt: skip
    sparse_beacon_stats(alerts, k, times, sizes)
    counters[0]["alerts"] += 1
