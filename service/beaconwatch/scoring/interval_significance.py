"""Two more tests against Poisson arrivals, on the raw intervals: their CV and their floor.

The fit statistic of `significance` (relative spread of the folded single beats + outliers +
missed share) is the right yardstick for period and jitter, but as a test it spends its power
on the freedom of the fold: at +/-50 % symmetric jitter, or 50 % subtractive jitter with 30 %
of the check-ins missed, a dozen or two intervals rarely reach p = 1e-4. Two plainer
statistics ask less and so answer faster; both are blind to the period, which the fit still
provides.

- The coefficient of variation (std / mean): Poisson intervals have CV 1 (every second
  arrival: 1/sqrt(2)), a uniform jitter of +/-50 % has 0.29, 75 % subtractive 0.35. Missed
  check-ins raise it to about 0.5, and there it weakens.
- The gap floor (`kernels.gap_floor_sorted`: the 10th-percentile interval over the median):
  about 0.15 for Poisson arrivals, which bunch, while a beacon never calls back sooner than
  its jitter allows, missed check-ins or not (0.9 at 10 % jitter, 0.5 at +/-50 %). It catches
  gappy beacons: at 10-25 % jitter with 30 % of the check-ins missed it reaches p = 1e-4 with
  16 connections where the CV needs twice as many. Stored negated: lower is more regular for
  every table.

Bursty human traffic has a CV above 1 and a floor near 0. The detector uses the smallest of
the three p-values (fit, CV, floor), tripled (Bonferroni: testing thrice costs a factor 3).
The null quantiles come from 200,000 Poisson windows per window length, like the fit
statistic's, both statistics from the same simulated windows, shipped in
``null_interval_quantiles.npz`` (built by `bench/build_null_tables.py`, in about a minute) and
simulated at start-up with fewer windows if the shipped file is stale.

Tried and left out: the CV of the shortest 60 % of the intervals is more powerful still on
gappy beacons, but in the evaluation it also alerted on browsing bursts (3 benign pairs per
2,000 host-days on one seed, against 1), and restricted to longer windows it lost its edge.
"""

from __future__ import annotations

import hashlib
import inspect
from enum import IntEnum
from functools import lru_cache
from pathlib import Path

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import F64
from beaconwatch.scoring import kernels
from beaconwatch.scoring.kernels import kernel_source
from beaconwatch.scoring.significance import (
    MIN_INTERVALS,
    NULL_MAX_INTERVALS,
    NULL_SEED,
    NULL_TICKS_PER_S,
    SHIPPED_CYCLES,
    empty_table,
    levels_fingerprint,
    null_gaps,
    quantile_row,
    shipped_or_simulated,
    simulate_null,
    table_rows,
    write_shipped,
)

INTERVAL_SHIPPED_PATH = Path(__file__).with_name("null_interval_quantiles.npz")
INTERVAL_SHIPPED_SIMS = 200_000
INTERVAL_FALLBACK_SIMS = 20_000  # p down to 5e-5; about 2 s for the tables of 32 events
INTERVAL_STREAM = 7  # keeps these random streams apart from the fit statistic's


class RawTest(IntEnum):
    """The statistics of this module, in table order."""

    CV = 0
    FLOOR = 1  # negated gap floor


N_RAW_TESTS = len(RawTest)


@njit(cache=True, nogil=True)
def raw_statistics(intervals: F64, sorted_work: F64, out: F64) -> None:
    """``out[RawTest.*]`` of one window's intervals (any order); lower = more regular.
    ``sorted_work`` is scratch of at least len(intervals)."""
    m = intervals.shape[0]
    srt = sorted_work[:m]
    srt[:] = intervals
    kernels.sort_small(srt)
    out[0] = kernels.coefficient_of_variation(intervals)
    out[1] = -kernels.gap_floor_sorted(srt, kernels.median_sorted(srt)) if m else 0.0


@njit(cache=True, nogil=True)
def _raw_null_stats(gaps_s: F64, out: F64) -> None:
    """Statistics (rows of ``out``) of Poisson windows, times rounded to ms like the ring's."""
    sims, m = gaps_s.shape
    intervals = np.empty(m)
    srt = np.empty(m)
    stats = np.empty(N_RAW_TESTS)
    for s in range(sims):
        t = 0.0
        last = 0.0
        for i in range(m):
            t += gaps_s[s, i]
            now = np.floor(t * NULL_TICKS_PER_S + 0.5) / NULL_TICKS_PER_S
            intervals[i] = now - last
            last = now
        raw_statistics(intervals, srt, stats)
        for k in range(N_RAW_TESTS):
            out[k, s] = stats[k]


def raw_null_rows(intervals: int, sims: int, seed: int, events_per_cycle: int) -> F64:
    """Quantile rows of windows of ``intervals`` intervals, shape (N_RAW_TESTS, N_LEVELS)."""
    rng = np.random.default_rng([seed, events_per_cycle, intervals, INTERVAL_STREAM])
    stats = np.empty((N_RAW_TESTS, sims))
    simulate_null(rng, intervals, events_per_cycle, _raw_null_stats, stats)
    stats.sort(axis=1)
    return np.stack([quantile_row(row) for row in stats])


@lru_cache(maxsize=8)
def raw_null_tables(
    history_events: int, sims: int = INTERVAL_FALLBACK_SIMS, seed: int = NULL_SEED,
    events_per_cycle: int = 1,
) -> F64:  # fmt: skip
    """Quantiles at `significance.P_LEVELS`, shape (N_RAW_TESTS, rows, N_LEVELS); read-only,
    cached."""
    rows = table_rows(history_events)
    tables = np.stack([empty_table(rows) for _ in range(N_RAW_TESTS)])
    for m in range(MIN_INTERVALS, rows):
        tables[:, m] = raw_null_rows(m, sims, seed, events_per_cycle)
    tables.flags.writeable = False
    return tables


def interval_fingerprint() -> str:
    """Everything the null depends on: a shipped table with another fingerprint is stale."""
    parts = [
        kernel_source(raw_statistics),
        kernel_source(_raw_null_stats),
        inspect.getsource(raw_null_rows),
        kernel_source(kernels.coefficient_of_variation),
        kernel_source(kernels.gap_floor_sorted),
        kernel_source(kernels.median_sorted),
        kernel_source(kernels.quantile_sorted),
        kernel_source(kernels.sort_small),
        inspect.getsource(null_gaps),
        inspect.getsource(simulate_null),
        inspect.getsource(quantile_row),
        repr((NULL_TICKS_PER_S, MIN_INTERVALS, INTERVAL_STREAM)),
        levels_fingerprint(),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def build_shipped(path: Path = INTERVAL_SHIPPED_PATH, sims: int = INTERVAL_SHIPPED_SIMS) -> None:
    """Write the tables (every connection, every second one) for the longest windows."""
    tables = np.stack(
        [raw_null_tables.__wrapped__(NULL_MAX_INTERVALS + 1, sims, NULL_SEED, k)
         for k in SHIPPED_CYCLES]
    )  # fmt: skip
    write_shipped(path, tables, sims, NULL_SEED, interval_fingerprint())


def detector_interval_tables(history_events: int, path: Path = INTERVAL_SHIPPED_PATH) -> F64:
    """Shape (2, N_RAW_TESTS, table_rows(history_events), N_LEVELS): every connection, every
    second one."""
    return shipped_or_simulated(
        history_events, path, interval_fingerprint(), raw_null_tables, INTERVAL_FALLBACK_SIMS,
        "interval CV and floor null",
    )  # fmt: skip


@njit(cache=True, nogil=True)
def combined_p_value(p_fit: float, p_cv: float, p_floor: float) -> float:
    """Bonferroni over the three tests: min(1, 3 min(p_fit, p_cv, p_floor))."""
    return min(1.0, 3.0 * min(p_fit, p_cv, p_floor))
