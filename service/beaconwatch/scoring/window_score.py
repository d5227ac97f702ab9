"""Score one pair's window of connection start times and sizes.

The result is a flat float64 vector (numba-friendly) whose slots are named in `Stat`; the
parameters come in as a float64 vector built by `scoring_params` from the config. New measures
(e.g. period folding and phase tests for jittered beacons) are added as new slots and new
kernels called from `score_window`, without touching the state layer.

Score = weighted mean of three parts, each in [0, 1]:
- intervals: how tight the inter-arrival intervals are around their median,
  0.7 * max(0, 1 - (MAD / median) / INTERVAL_MAD_TOLERANCE) + 0.3 * (1 - |Bowley skewness|)
  (Poisson-like human traffic has MAD/median ~0.7 and scores ~0.2; a 60 s beacon with
  +/-10 % jitter has MAD/median ~0.05 and scores ~0.9);
- sizes: the same dispersion measure on the bytes of each connection;
- count: connections / (history length * 0.75), capped at 1: more evidence, more trust.
A median interval below `min_period_s` scores 0 (bursts of one session are not beacons).
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
from numba import njit

from beaconwatch.scoring.kernels import (
    bowley_skewness_sorted,
    coefficient_of_variation,
    mad_about,
    median_sorted,
    quantile_sorted,
)

if TYPE_CHECKING:
    from beaconwatch.config import ScoringConfig

F64 = npt.NDArray[np.float64]

INTERVAL_MAD_TOLERANCE = 0.5  # MAD/median at which the interval dispersion part reaches 0
# Bowley skewness divides by the interquartile range: for a near-perfect beacon the IQR is a few
# ms of timestamp rounding and the ratio is noise in [-1, 1]. Below this spread (2.5 ms, or 1 %
# of the period) the intervals count as symmetric.
MIN_SKEW_IQR_S = 0.0025
MIN_SKEW_IQR_FRACTION = 0.01
SIZE_MAD_TOLERANCE = 0.5


class Stat(IntEnum):
    """Slots of the stats vector returned by `score_window`."""

    SCORE = 0
    PERIOD_S = 1
    INTERVAL_MAD_S = 2
    INTERVAL_BOWLEY = 3
    INTERVAL_CV = 4
    CONNECTIONS = 5
    BYTES_MEDIAN = 6
    BYTES_MAD = 7
    INTERVAL_SCORE = 8
    SIZE_SCORE = 9
    COUNT_SCORE = 10
    SIZE = 11


N_STATS = int(Stat.SIZE)  # plain int: numba cannot size an array with an IntEnum member


class Param(IntEnum):
    """Slots of the parameter vector built by `scoring_params`."""

    MIN_PERIOD_S = 0
    WEIGHT_INTERVALS = 1
    WEIGHT_SIZES = 2
    WEIGHT_COUNT = 3
    FULL_COUNT = 4  # connections at which the count part reaches 1
    SIZE = 5


def scoring_params(config: ScoringConfig, history_events: int) -> F64:
    params = np.zeros(Param.SIZE, dtype=np.float64)
    params[Param.MIN_PERIOD_S] = config.min_period_s
    params[Param.WEIGHT_INTERVALS] = config.weight_intervals
    params[Param.WEIGHT_SIZES] = config.weight_sizes
    params[Param.WEIGHT_COUNT] = config.weight_count
    params[Param.FULL_COUNT] = max(2.0, 0.75 * history_events)
    return params


WORK_ROWS = 3


@njit(cache=True, nogil=True)
def new_workspace(history_events: int) -> F64:
    """Scratch rows `score_window` needs for windows of up to ``history_events`` connections."""
    return np.empty((WORK_ROWS, history_events), dtype=np.float64)


@njit(cache=True, nogil=True)
def dispersion_score(x: F64, tolerance: float, work: F64) -> tuple[float, float, float]:
    """(median, MAD, score) where score = 1 - (MAD / median) / tolerance, clipped to [0, 1].

    ``work`` is a (2, >= len(x)) scratch array.
    """
    n = x.shape[0]
    x_sorted = work[0, :n]
    x_sorted[:] = x
    x_sorted.sort()
    med = median_sorted(x_sorted)
    mad = mad_about(x, med, work[1])
    if med <= 0.0:
        return med, mad, 1.0 if mad == 0.0 else 0.0
    return med, mad, max(0.0, 1.0 - (mad / med) / tolerance)


@njit(cache=True, nogil=True)
def score_window(times_s: F64, sizes: F64, params: F64, out: F64, work: F64) -> None:
    """Fill ``out`` (length Stat.SIZE) for one window.

    ``times_s`` are connection start times in seconds, sorted ascending; ``sizes`` are the
    connections' byte counts in the same order. ``work`` comes from `new_workspace`.
    """
    out[:] = 0.0
    n = times_s.shape[0]
    out[Stat.CONNECTIONS] = n
    if n < 3:
        return
    intervals = work[2, : n - 1]
    for i in range(n - 1):
        intervals[i] = times_s[i + 1] - times_s[i]
    intervals_sorted = work[0, : n - 1]
    intervals_sorted[:] = intervals
    intervals_sorted.sort()
    period = median_sorted(intervals_sorted)
    iqr = quantile_sorted(intervals_sorted, 0.75) - quantile_sorted(intervals_sorted, 0.25)
    if iqr < max(MIN_SKEW_IQR_S, MIN_SKEW_IQR_FRACTION * period):
        bowley = 0.0
    else:
        bowley = bowley_skewness_sorted(intervals_sorted)
    mad = mad_about(intervals, period, work[1])
    out[Stat.PERIOD_S] = period
    out[Stat.INTERVAL_MAD_S] = mad
    out[Stat.INTERVAL_BOWLEY] = bowley
    out[Stat.INTERVAL_CV] = coefficient_of_variation(intervals)

    # Interval statistics are done with the scratch rows, so the sizes may reuse them.
    bytes_median, bytes_mad, size_score = dispersion_score(sizes, SIZE_MAD_TOLERANCE, work)
    out[Stat.BYTES_MEDIAN] = bytes_median
    out[Stat.BYTES_MAD] = bytes_mad

    if period < params[Param.MIN_PERIOD_S] or period <= 0.0:
        return
    mad_part = max(0.0, 1.0 - (mad / period) / INTERVAL_MAD_TOLERANCE)
    interval_score = 0.7 * mad_part + 0.3 * (1.0 - abs(bowley))
    count_score = min(1.0, n / params[Param.FULL_COUNT])
    w_i = params[Param.WEIGHT_INTERVALS]
    w_s = params[Param.WEIGHT_SIZES]
    w_c = params[Param.WEIGHT_COUNT]
    out[Stat.INTERVAL_SCORE] = interval_score
    out[Stat.SIZE_SCORE] = size_score
    out[Stat.COUNT_SCORE] = count_score
    out[Stat.SCORE] = (w_i * interval_score + w_s * size_score + w_c * count_score) / (
        w_i + w_s + w_c
    )
