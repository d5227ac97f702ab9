"""The alert policy of the ingest kernel (numba): prevalence down-ranking, the beacon alert
lifecycle (threshold, cooldown, new/update, period checks, backoff) and the alert rows of the
two one-off rules (long connection, sparse beacon).

Alert lifecycle per pair: the first score at or above the threshold emits a "new" alert;
later, an "update" is emitted only when the period or the score changed materially since the
last alert and at least one cooldown has passed; nothing in between, but for one exception:
an alert from a part-filled ring has its period checked each time the pair's connections
double, until the ring is full, and a sleep range that moved is an update at once.

Decided per connection inside the kernel (`state.ingest` calls these), where the pair's state
is; so every function here takes scalars and the few arrays it writes (a statistics vector,
`domain.alert_rows`), never the pair table: `state` may import `alerting`, never the other
way round (pyproject's layers contract). What a pair's last alert said, the prevalence
sketch's counts and the rules' per-pair bookkeeping are read and kept by `state`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from beaconwatch.config import Config
from beaconwatch.domain.alert_rows import (
    LIFECYCLE_NEW,
    LIFECYCLE_UPDATE,
    AlertRows,
)
from beaconwatch.domain.dtypes import F64
from beaconwatch.scoring.daily import ALL_GATES, MIN_BYTES, SIZE_SPREAD_LN, three_connection_gates
from beaconwatch.scoring.sleep_range import described_range
from beaconwatch.scoring.window_score import Stat

SPARSE_SCORE = 0.8  # rule sparse-beacon's fixed score: its alerts are hunting leads, severity low


class Policy(NamedTuple):
    """Float parameters of prevalence and the alert lifecycle (a record numba passes by value
    and caches kernels for, like `state.kernel_params.Limits`)."""

    threshold: float
    prevalence_min_sources: float  # below this many sources a destination is never down-ranked
    prevalence_low: float  # share of the fleet where down-ranking starts...
    prevalence_high: float  # ...and where the score reaches 0
    update_period_change: float  # relative change of the mean interval that makes an update
    update_score_change: float  # absolute score change that makes an alert update
    fanout_low: float  # destinations of a source in a port block where down-ranking starts...
    fanout_high: float  # ...and where the score reaches 0 (P2P fan-out, `state.prevalence`)
    sparse_max_deviation: float  # rule sparse-beacon: largest relative deviation of 2 intervals


def policy_from(config: Config) -> Policy:
    """The config's prevalence and alert lifecycle parameters."""
    prevalence, alerting = config.prevalence, config.alerting
    return Policy(
        threshold=float(config.scoring.threshold),
        prevalence_min_sources=float(prevalence.min_sources),
        prevalence_low=float(prevalence.low_share),
        prevalence_high=float(prevalence.high_share),
        update_period_change=float(alerting.update_period_change),
        update_score_change=float(alerting.update_score_change),
        fanout_low=float(prevalence.fanout_low_destinations),
        fanout_high=float(prevalence.fanout_high_destinations),
        sparse_max_deviation=float(alerting.sparse_max_deviation),
    )


@njit(cache=True, nogil=True)
def prevalence(sources: int, fleet_sources: float, policy: Policy) -> tuple[float, float]:
    """(share of the fleet, score factor) of a destination ``sources`` internal sources
    reach, of ``fleet_sources`` (`state.prevalence`): the factor falls linearly from 1 at
    low_share to 0 at high_share once min_sources reach it."""
    share = min(1.0, sources / max(1.0, fleet_sources))
    factor = 1.0
    if sources >= policy.prevalence_min_sources:
        low, high = policy.prevalence_low, policy.prevalence_high
        factor = min(1.0, max(0.0, 1.0 - (share - low) / max(1e-9, high - low)))
    return share, factor


@njit(cache=True, nogil=True)
def apply_prevalence(
    stats: F64, out: AlertRows, k: int, sources: int, fleet_sources: float, fanout: int,
    policy: Policy,
) -> None:  # fmt: skip
    """Down-rank destinations much of the fleet talks to (fleet-wide polling is not C2), and
    a source's fan-out to many destinations in one high port block (P2P keep-alives); what
    they found goes to row ``k`` of ``out``."""
    share, factor = prevalence(sources, fleet_sources, policy)
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
    stats: F64, t: int, alerted_before: bool, last_alert_ms: int, last_mean_s: float,
    last_score: float, last_low_s: float, last_high_s: float, cooldown_ms: int,
    policy: Policy, refining: bool,
) -> int:  # fmt: skip
    """0 = no alert, else LIFECYCLE_NEW / LIFECYCLE_UPDATE, given what the pair's last
    alert said (``last_*``, read only when ``alerted_before``)."""
    score = stats[Stat.SCORE]
    if score < policy.threshold:
        return 0
    if not alerted_before:
        return LIFECYCLE_NEW
    if refining:  # a period check (see `state.ingest`): cooldown or not, a corrected range is news
        # The described sleep range, not the anchor: "10 s -20 %" and "8 s +25 %" are the same
        # check-ins, and the shape cannot be told from intervals.
        low, high = described_sleep_range(stats)
        moved = max(abs(low - last_low_s), abs(high - last_high_s))
        if moved > policy.update_period_change * stats[Stat.MEAN_INTERVAL_S]:
            return LIFECYCLE_UPDATE
    if t - last_alert_ms < cooldown_ms:
        return 0
    if sleep_changed(stats, last_mean_s, last_low_s, last_high_s, policy):
        return LIFECYCLE_UPDATE
    # Only an escalation: a wide-jitter beacon's score wanders by more than 0.2 around its
    # level, and each dip and return was an update.
    score_rise = score - last_score
    if score_rise >= policy.update_score_change:
        return LIFECYCLE_UPDATE
    return 0


@njit(cache=True, nogil=True)
def sleep_changed(
    stats: F64, last_mean_s: float, last_low_s: float, last_high_s: float, policy: Policy
) -> bool:
    """Whether the beacon's sleep changed since its last alert: its mean interval moved by
    more than update_period_change, and by more than a quarter of the sleep range the last
    alert described. The mean interval, not the nominal period or the range's ends: with wide
    jitter those hop between equivalent readings ("300 s +/- 50 %", "480 s -50 %") while the
    beacon is unchanged, and each hop was an update (up to one per cooldown, 24 a day)."""
    tolerance = max(policy.update_period_change * last_mean_s, 0.25 * (last_high_s - last_low_s))
    return bool(abs(stats[Stat.MEAN_INTERVAL_S] - last_mean_s) > tolerance)


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
def backoff_events(connections: int, rescore_every: int, history: int) -> int:
    """Extra connections before a pair with nothing to report is scored again."""
    return int(min(max(rescore_every, connections // 4), history))


@njit(cache=True, nogil=True)
def long_connection_score(duration_ms: int, long_connection_ms: int) -> float:
    """0.8 at long_connection_s, rising with the log of the duration: 0.85 (medium) at 3x,
    0.92 (high) at 6x, 0.97 (critical) at 12x."""
    duration_s = duration_ms / 1000.0
    return float(min(0.99, 0.8 + 0.17 * np.log(duration_s * 1000.0 / long_connection_ms)
                     / np.log(12.0)))  # fmt: skip


@njit(cache=True, nogil=True)
def rule_alert(
    alerts: AlertRows, k: int, row: int, kind: int, score: float, sources: float,
    share: float, duration_s: float, window_start_ms: np.int64, detected_ms: np.int64,
    first_alert_ms: np.int64, check_ins: float, first_seen_ms: np.int64,
) -> None:  # fmt: skip
    """Fill alert row ``k`` of a one-off rule (long connection, sparse beacon): new, not
    down-ranked by prevalence, every statistic 0 but the score (the rule sets its own
    after). The window ends at the detection."""
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
    alerts.check_ins[k] = check_ins
    alerts.per_check_in[k] = 1.0
    alerts.detected_ms[k] = detected_ms
    alerts.window_start_ms[k] = window_start_ms
    alerts.window_end_ms[k] = detected_ms
    alerts.first_alert_ms[k] = first_alert_ms
    alerts.first_seen_ms[k] = first_seen_ms


@njit(cache=True, nogil=True)
def sparse_beacon_gates(times_s: F64, sizes: F64, min_interval_s: float, policy: Policy) -> bool:
    """Rule sparse-beacon's test of a pair's first three connections (sorted by time):
    every gate of `scoring.daily` passes (both intervals >= min_interval_s and regular, two
    of three sizes alike)."""
    gates = three_connection_gates(
        times_s, sizes, min_interval_s, policy.sparse_max_deviation, SIZE_SPREAD_LN, MIN_BYTES,
        True,
    )  # fmt: skip
    return bool(gates == ALL_GATES)


@njit(cache=True, nogil=True)
def sparse_beacon_stats(alerts: AlertRows, k: int, times_s: F64, sizes: F64) -> None:
    """Rule sparse-beacon's own statistics in alert row ``k`` (after `rule_alert`): the
    three connections' intervals and sizes."""
    mean_s = 0.5 * (times_s[2] - times_s[0])
    alerts.stats[k, Stat.CONNECTIONS] = 3
    for s in (Stat.PERIOD_S, Stat.MEAN_INTERVAL_S, Stat.MEDIAN_INTERVAL_S):
        alerts.stats[k, s] = mean_s
    low_s = min(times_s[1] - times_s[0], times_s[2] - times_s[1])
    high_s = max(times_s[1] - times_s[0], times_s[2] - times_s[1])
    alerts.stats[k, Stat.LOW_S] = low_s
    alerts.stats[k, Stat.HIGH_S] = high_s
    alerts.stats[k, Stat.JITTER_RATIO] = (high_s - low_s) / high_s if high_s > 0.0 else 0.0
    alerts.stats[k, Stat.BYTES_MEDIAN] = np.median(sizes)
