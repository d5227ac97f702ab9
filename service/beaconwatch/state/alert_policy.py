"""The ingest kernel's alert policy: prevalence down-ranking, the beacon alert lifecycle
(threshold, cooldown, new/update, period checks, backoff), the long-connection rule and
rule sparse-beacon.

Alert lifecycle per pair: the first score at or above the threshold emits a "new" alert;
later, an "update" is emitted only when the period or the score changed materially since the
last alert and at least one cooldown has passed; nothing in between, but for one exception:
an alert from a part-filled ring has its period checked each time the pair's connections
double, until the ring is full, and a sleep range that moved is an update at once.

Here in `state`, not in `alerting`: it is decided per connection inside the kernel, where the
pair's state is (`state.ingest` calls it), and `alerting` is independent of `state` (it gets
the kernel's alerts as `domain.alert_rows`). Deciding in a second kernel over scored
candidates would copy every scoring's statistics out and back for no change in behaviour.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.domain.alert_rows import (
    KIND_LONG_CONNECTION,
    KIND_SPARSE_BEACON,
    LIFECYCLE_NEW,
    LIFECYCLE_UPDATE,
    AlertRows,
)
from beaconwatch.domain.dtypes import F32, F64, I64, U32, U64, AnyArray
from beaconwatch.scoring.daily import ALL_GATES, MIN_BYTES, SIZE_SPREAD_LN, three_connection_gates
from beaconwatch.scoring.sleep_range import described_range
from beaconwatch.scoring.window_score import Stat
from beaconwatch.state.connections import END, START
from beaconwatch.state.kernel_params import Limits, Policy
from beaconwatch.state.pair_table import (
    ALERTED_HIGH_S,
    ALERTED_LOW_S,
    ALERTED_MEAN_S,
    ALERTED_SCORE,
    NEVER_MS,
)
from beaconwatch.state.prevalence import destination_sources, fleet_sources, source_fanout
from beaconwatch.state.size_codec import decode_size
from beaconwatch.state.table_columns import TableColumns

SPARSE_SCORE = 0.8  # rule sparse-beacon's fixed score: its alerts are hunting leads, severity low


@njit(cache=True, nogil=True)
def prevalence(
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
def apply_prevalence(
    stats: F64, out: AlertRows, k: int, sketch: U32, nonzero: I64, keys: U64, port_proto: U32,
    row: int, policy: Policy,
) -> None:  # fmt: skip
    """Down-rank destinations much of the fleet talks to (fleet-wide polling is not C2), and
    a source's fan-out to many destinations in one high port block (P2P keep-alives); what
    they found goes to row ``k`` of ``out``."""
    sources, share, factor = prevalence(sketch, nonzero, keys, port_proto, row, policy)
    fanout = source_fanout(sketch, keys[row, 0], keys[row, 1], port_proto[row])
    if fanout > policy.fanout_low:
        low, high = policy.fanout_low, policy.fanout_high
        factor *= min(1.0, max(0.0, 1.0 - (fanout - low) / max(1e-9, high - low)))
    out.fanout[k] = fanout
    out.prevalence_sources[k] = sources
    out.prevalence[k] = share
    out.prevalence_factor[k] = factor
    out.raw_score[k] = stats[Stat.SCORE]
    stats[Stat.SCORE] = stats[Stat.SCORE] * factor


@njit(cache=True, nogil=True)
def lifecycle(
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
        low, high = described_sleep_range(stats)
        moved = max(
            abs(low - np.float64(alerted[row, ALERTED_LOW_S])),
            abs(high - np.float64(alerted[row, ALERTED_HIGH_S])),
        )
        if moved > policy.update_period_change * stats[Stat.MEAN_INTERVAL_S]:
            return LIFECYCLE_UPDATE
    if t - alert_ms[row] < limits.cooldown_ms:
        return 0
    if sleep_changed(stats, alerted, row, policy):
        return LIFECYCLE_UPDATE
    # Only an escalation: a wide-jitter beacon's score wanders by more than 0.2 around its
    # level, and each dip and return was an update.
    score_rise = score - np.float64(alerted[row, ALERTED_SCORE])
    if score_rise >= policy.update_score_change:
        return LIFECYCLE_UPDATE
    return 0


@njit(cache=True, nogil=True)
def sleep_changed(stats: F64, alerted: F32, row: int, policy: Policy) -> bool:
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
    tb: TableColumns, row: int, slot: int, epoch: int, sketch: U32, nonzero: I64,
    limits: Limits, policy: Policy, counters: AnyArray, alerts: AlertRows,
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
    sources, share, factor = prevalence(sketch, nonzero, tb.keys, tb.port_proto, row, policy)
    if factor < 1.0:  # a destination prevalence down-ranks: not rare
        return
    duration_s = (end - start) / 1000.0
    # 0.8 at long_connection_s, rising with the log of the duration: 0.85 (medium) at 3x,
    # 0.92 (high) at 6x, 0.97 (critical) at 12x.
    score = min(0.99, 0.8 + 0.17 * np.log(duration_s * 1000.0 / min_ms) / np.log(12.0))
    k = _rule_alert(
        tb, row, counters, alerts, KIND_LONG_CONNECTION, score, sources, share, duration_s,
        epoch + start, epoch + end, epoch + start,
    )  # fmt: skip
    alerts.stats[k, Stat.CONNECTIONS] = tb.long_sessions[row]


@njit(cache=True, nogil=True)
def _rule_alert(
    tb: TableColumns, row: int, counters: AnyArray, alerts: AlertRows, kind: int, score: float,
    sources: float, share: float, duration_s: float, window_start_ms: np.int64,
    detected_ms: np.int64, first_alert_ms: np.int64,
) -> int:  # fmt: skip
    """The next alert row of a one-off rule (long connection, sparse beacon): new, not
    down-ranked by prevalence, every statistic 0 but the score; returns its index for the
    rule's own statistics. The window ends at the detection."""
    k = counters[0]["alerts"]
    alerts.row[k] = row
    alerts.stats[k, :] = 0.0
    alerts.stats[k, Stat.SCORE] = score
    alerts.lifecycle[k] = LIFECYCLE_NEW
    alerts.kind[k] = kind
    alerts.duration_s[k] = duration_s
    alerts.prevalence_sources[k] = sources
    alerts.prevalence[k] = share
    alerts.prevalence_factor[k] = 1.0
    alerts.fanout[k] = 0.0
    alerts.raw_score[k] = score
    alerts.check_ins[k] = tb.n_connections[row]
    alerts.per_check_in[k] = 1.0
    alerts.detected_ms[k] = detected_ms
    alerts.window_start_ms[k] = window_start_ms
    alerts.window_end_ms[k] = detected_ms
    alerts.first_alert_ms[k] = first_alert_ms
    alerts.first_seen_ms[k] = tb.first_seen_ms[row]
    counters[0]["alerts"] += 1
    return int(k)


@njit(cache=True, nogil=True)
def sparse_beacon_alert(
    tb: TableColumns, row: int, epoch: int, sketch: U32, nonzero: I64, limits: Limits,
    policy: Policy, counters: AnyArray, alerts: AlertRows, window_t: F64, window_b: F64,
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
    sources, share, _ = prevalence(sketch, nonzero, tb.keys, tb.port_proto, row, policy)
    if sources > 1:  # another internal host reaches it: not a new destination
        return
    mean_s = 0.5 * (times[2] - times[0])
    detected_ms = epoch + np.int64(times[2] * 1000.0)
    k = _rule_alert(
        tb, row, counters, alerts, KIND_SPARSE_BEACON, SPARSE_SCORE, sources, share, 0.0,
        epoch + np.int64(times[0] * 1000.0), detected_ms, detected_ms,
    )  # fmt: skip
    alerts.stats[k, Stat.CONNECTIONS] = 3
    for s in (Stat.PERIOD_S, Stat.MEAN_INTERVAL_S, Stat.MEDIAN_INTERVAL_S):
        alerts.stats[k, s] = mean_s
    low_s = min(times[1] - times[0], times[2] - times[1])
    high_s = max(times[1] - times[0], times[2] - times[1])
    alerts.stats[k, Stat.LOW_S] = low_s
    alerts.stats[k, Stat.HIGH_S] = high_s
    alerts.stats[k, Stat.JITTER_RATIO] = (high_s - low_s) / high_s if high_s > 0.0 else 0.0
    alerts.stats[k, Stat.BYTES_MEDIAN] = np.median(sizes)


@njit(cache=True, nogil=True)
def described_sleep_range(stats: F64) -> tuple[float, float]:
    return described_range(
        stats[Stat.PERIOD_S], stats[Stat.JITTER_RATIO], int(stats[Stat.JITTER_SHAPE])
    )


@njit(cache=True, nogil=True)
def next_period_check(connections: int, history: int) -> float:
    """Connection count of an alerted pair's next period check: twice as many, at most a
    full ring; 0 (none) once the ring is full."""
    return float(min(2 * connections, history)) if connections < history else 0.0


@njit(cache=True, nogil=True)
def backoff_events(connections: int, limits: Limits, history: int) -> int:
    """Extra connections before a pair with nothing to report is scored again."""
    return int(min(max(limits.rescore_every, connections // 4), history))
