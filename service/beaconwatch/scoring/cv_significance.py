"""A second test against Poisson arrivals: the coefficient of variation of the raw intervals.

The fit statistic of `significance` (relative spread of the folded single beats + outliers +
missed share) is the right yardstick for period and jitter, but as a test it spends its power
on the freedom of the fold: at +/-50 % symmetric jitter, or 50 % subtractive jitter with 30 %
of the check-ins missed, a dozen or two intervals rarely reach p = 1e-4. The plain coefficient
of variation (std / mean) of the intervals asks less and so answers faster: Poisson intervals
have CV 1 (every second arrival: 1/sqrt(2)), a uniform jitter of +/-50 % has 0.29, 75 %
subtractive 0.35, and missed beats raise it only to about 0.5. Bursty human traffic has CV
above 1. It is blind to the period, which the fit still provides.

The detector uses the smaller of the two p-values, doubled (Bonferroni: testing twice costs a
factor 2): p = min(1, 2 min(p_fit, p_cv)). The null quantiles come from 200,000 Poisson windows
per window length, exactly like the fit statistic's, shipped in ``null_cv_quantiles.npz``
(built by `bench/build_null_tables.py`, in seconds) and simulated at start-up with fewer
windows if the shipped file is stale.
"""

from __future__ import annotations

import hashlib
import inspect
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from numba import njit

from beaconwatch.scoring import kernels
from beaconwatch.scoring.significance import (
    MIN_INTERVALS,
    NULL_CHUNK_SIMS,
    NULL_MAX_INTERVALS,
    NULL_SEED,
    NULL_TICKS_PER_S,
    P_LEVELS,
    SHIPPED_CYCLES,
    empty_table,
    null_gaps,
    quantile_row,
    shipped_or_simulated,
    table_rows,
    write_shipped,
)

F64 = npt.NDArray[np.float64]

CV_SHIPPED_PATH = Path(__file__).with_name("null_cv_quantiles.npz")
CV_SHIPPED_SIMS = 200_000
CV_FALLBACK_SIMS = 20_000  # p down to 5e-5; about 1 s for both tables of 32 events
CV_STREAM = 7  # keeps these random streams apart from the fit statistic's


@njit(cache=True, nogil=True)
def _cv_null_stats(gaps_s: F64, out: F64) -> None:
    """CV of the intervals of Poisson windows, times rounded to ms like the ring buffer's."""
    sims, m = gaps_s.shape
    intervals = np.empty(m)
    for s in range(sims):
        t = 0.0
        last = 0.0
        for i in range(m):
            t += gaps_s[s, i]
            now = np.floor(t * NULL_TICKS_PER_S + 0.5) / NULL_TICKS_PER_S
            intervals[i] = now - last
            last = now
        out[s] = kernels.coefficient_of_variation(intervals)


def cv_null_row(intervals: int, sims: int, seed: int, events_per_cycle: int) -> F64:
    rng = np.random.default_rng([seed, events_per_cycle, intervals, CV_STREAM])
    stats = np.empty(sims)
    for lo in range(0, sims, NULL_CHUNK_SIMS):
        hi = min(lo + NULL_CHUNK_SIMS, sims)
        _cv_null_stats(null_gaps(rng, hi - lo, intervals, events_per_cycle), stats[lo:hi])
    stats.sort()
    return quantile_row(stats)


@lru_cache(maxsize=8)
def cv_null_table(
    history_events: int, sims: int = CV_FALLBACK_SIMS, seed: int = NULL_SEED,
    events_per_cycle: int = 1,
) -> F64:  # fmt: skip
    """CV quantiles at `significance.P_LEVELS`, shape (rows, N_LEVELS); read-only, cached."""
    rows = table_rows(history_events)
    table = empty_table(rows)
    for m in range(MIN_INTERVALS, rows):
        table[m] = cv_null_row(m, sims, seed, events_per_cycle)
    table.flags.writeable = False
    return table


def cv_fingerprint() -> str:
    """Everything the CV null depends on: a shipped table with another fingerprint is stale."""
    parts = [
        inspect.getsource(_cv_null_stats),
        inspect.getsource(cv_null_row),
        inspect.getsource(kernels.coefficient_of_variation),
        inspect.getsource(null_gaps),
        inspect.getsource(quantile_row),
        repr((NULL_TICKS_PER_S, MIN_INTERVALS, CV_STREAM, P_LEVELS.tobytes().hex())),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def build_shipped(path: Path = CV_SHIPPED_PATH, sims: int = CV_SHIPPED_SIMS) -> None:
    """Write both CV tables (every connection, every second one) for the longest windows."""
    tables = np.stack(
        [cv_null_table.__wrapped__(NULL_MAX_INTERVALS + 1, sims, NULL_SEED, k)
         for k in SHIPPED_CYCLES]
    )  # fmt: skip
    write_shipped(path, tables, sims, NULL_SEED, cv_fingerprint())


def detector_cv_tables(history_events: int, path: Path = CV_SHIPPED_PATH) -> F64:
    """Shape (2, table_rows(history_events), N_LEVELS): every connection, every second one."""
    return shipped_or_simulated(
        history_events, path, cv_fingerprint(), cv_null_table, CV_FALLBACK_SIMS, "interval CV null"
    )


@njit(cache=True, nogil=True)
def combined_p_value(p_fit: float, p_cv: float) -> float:
    """Bonferroni over the two tests: min(1, 2 min(p_fit, p_cv))."""
    return min(1.0, 2.0 * min(p_fit, p_cv))
