"""The ingest kernel's step after a scoring (numba): prevalence, the alert lifecycle's
verdict (`alerting.policy`), and what the pair keeps of it: when it was scored and is due
again, its last alert's period, score and sleep range.

Run per scoring, not per flow; it takes the columns it reads or writes, not the table tuple
(see `state.ingest_steps`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.alerting.policy import (
    Policy,
    apply_prevalence,
    backoff_events,
    beacon_alert,
    described_sleep_range,
    lifecycle,
    next_period_check,
)
from beaconwatch.domain.alert_rows import LIFECYCLE_NEW, AlertRows
from beaconwatch.domain.dtypes import F32, F64, I64, U32, U64
from beaconwatch.scoring.window_score import Stat
from beaconwatch.state.ingest_steps import NEVER_MS
from beaconwatch.state.kernel_params import Limits
from beaconwatch.state.pair_table import (
    ALERTED_HIGH_S,
    ALERTED_LOW_S,
    ALERTED_MEAN_S,
    ALERTED_REFINE_AT,
    ALERTED_SCORE,
)
from beaconwatch.state.prevalence import pair_fanout, pair_prevalence


@njit(cache=True, nogil=True)
def alert_decision(
    stats: F64, alerts: AlertRows, k: int, row: int, t: int, n: np.int64, history: int,
    epoch: int, first_rel: int, last_rel: int, per_check_in: float, refining: bool,
    sketch: U32, nonzero: I64, keys: U64, port_proto: U32, n_connections: U32,
    scored_count: U32, scored_ms: I64, alert_ms: I64, first_alert_ms: I64,
    first_seen_ms: I64, alerted: F32, limits: Limits, policy: Policy,
) -> int:  # fmt: skip
    """Decide on the pair's scoring at its ``n``-th connection (at ``t``; window
    ``first_rel`` .. ``last_rel`` after ``epoch``): its alert goes to row ``k`` of
    ``alerts``. Returns the lifecycle verdict, 0 for no alert."""
    sources, fleet = pair_prevalence(sketch, nonzero, keys, port_proto, row)
    fanout = pair_fanout(sketch, keys, port_proto, row)
    apply_prevalence(stats, alerts, k, sources, fleet, fanout, policy)
    scored_count[row] = n_connections[row]
    scored_ms[row] = t
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
        return 0
    if verdict == LIFECYCLE_NEW:
        first_alert_ms[row] = t
    alert_ms[row] = t
    alerted[row, ALERTED_MEAN_S] = stats[Stat.MEAN_INTERVAL_S]
    alerted[row, ALERTED_SCORE] = stats[Stat.SCORE]
    alerted[row, ALERTED_LOW_S], alerted[row, ALERTED_HIGH_S] = described_sleep_range(stats)
    alerted[row, ALERTED_REFINE_AT] = next_period_check(int(n), history)
    beacon_alert(
        alerts, k, row, stats, verdict, n_connections[row], per_check_in, t,
        epoch + first_rel, epoch + last_rel, first_alert_ms[row], first_seen_ms[row],
    )  # fmt: skip
    return int(verdict)
