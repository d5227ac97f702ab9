"""Small numba kernels: order statistics and dispersion of one pair's window.

Each kernel has a slow, obviously-correct NumPy twin in ``tests/unit/naive.py`` and is tested
against it on random inputs. Quantiles use linear interpolation between order statistics (NumPy's
default ``method="linear"``), so the twins can call ``np.percentile`` directly.
All kernels take an already **sorted** float64 array where they say so: callers sort once and
reuse the sorted copy for every statistic, with `sort_small`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import F64

# Up to this many values an insertion sort beats numba's quicksort, which allocates its
# partition stack on every call: a window's 8-32 values sort 2-3x faster.
INSERTION_SORT_MAX = 64


def kernel_source(kernel: Callable[..., Any]) -> str:
    """A kernel's Python source, compiled or not (NUMBA_DISABLE_JIT=1 leaves plain functions):
    the null tables' fingerprints hash it."""
    return inspect.getsource(getattr(kernel, "py_func", kernel))


@njit(cache=True, nogil=True)
def sort_small(x: F64) -> None:
    """Sort ``x`` in place, ascending. The same result as ``x.sort()`` for the values windows
    hold (no NaN, no -0.0: the order among equal values cannot show)."""
    n = x.shape[0]
    if n > INSERTION_SORT_MAX:
        x.sort()
        return
    for i in range(1, n):
        value = x[i]
        j = i - 1
        while j >= 0 and x[j] > value:
            x[j + 1] = x[j]
            j -= 1
        x[j + 1] = value


@njit(cache=True, nogil=True)
def quantile_sorted(x_sorted: F64, q: float) -> float:
    """Quantile ``q`` in [0, 1] of a sorted, non-empty array (linear interpolation)."""
    n = x_sorted.shape[0]
    pos = q * (n - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, n - 1)
    frac = pos - lo
    return float(x_sorted[lo] + (x_sorted[hi] - x_sorted[lo]) * frac)


@njit(cache=True, nogil=True)
def median_sorted(x_sorted: F64) -> float:
    return quantile_sorted(x_sorted, 0.5)


@njit(cache=True, nogil=True)
def mad_about(x: F64, center: float, work: F64) -> float:
    """Median absolute deviation of ``x`` (any order) about ``center`` (unscaled).

    ``work`` is scratch space of at least ``len(x)``: scoring runs for every due pair, and
    allocating there would cost more than the arithmetic.
    """
    n = x.shape[0]
    dev = work[:n]
    for i in range(n):
        dev[i] = abs(x[i] - center)
    sort_small(dev)
    return median_sorted(dev)


@njit(cache=True, nogil=True)
def bowley_skewness_sorted(x_sorted: F64) -> float:
    """Quartile skewness (Q3 + Q1 - 2 Q2) / (Q3 - Q1), in [-1, 1]; 0 when Q3 == Q1.

    Robust to outliers, unlike the moment skewness: one missed check-in does not swing it.
    """
    q1 = quantile_sorted(x_sorted, 0.25)
    q2 = quantile_sorted(x_sorted, 0.5)
    q3 = quantile_sorted(x_sorted, 0.75)
    iqr = q3 - q1
    if iqr <= 0.0:
        return 0.0
    return float((q3 + q1 - 2.0 * q2) / iqr)


@njit(cache=True, nogil=True)
def coefficient_of_variation(x: F64) -> float:
    """Population std / mean; 0 for a constant or empty array, inf if the mean is 0."""
    n = x.shape[0]
    if n == 0:
        return 0.0
    mean = x.sum() / n
    var = 0.0
    for i in range(n):
        var += (x[i] - mean) ** 2
    var /= n
    if var <= 0.0:
        return 0.0
    if mean == 0.0:
        return np.inf
    return float(np.sqrt(var) / abs(mean))


@njit(cache=True, nogil=True)
def gap_floor_sorted(x_sorted: F64, median: float) -> float:
    """Floor of the gaps: the ceil(n / 10)-th smallest over the median, of sorted intervals.

    About 0.15 for Poisson intervals, which have many short gaps; a beacon has none below its
    jitter's low edge, missed check-ins or not (0.5 at +/-50 % jitter). 0 if empty or the
    median is not positive.
    """
    n = x_sorted.shape[0]
    if n == 0 or median <= 0.0:
        return 0.0
    return float(x_sorted[(n + 9) // 10 - 1] / median)
