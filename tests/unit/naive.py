"""Slow, obviously-correct NumPy twins of the numba kernels (tested against each other)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def quantile(x: F64, q: float) -> float:
    return float(np.percentile(x, q * 100))


def mad(x: F64, center: float) -> float:
    return float(np.median(np.abs(x - center)))


def bowley(x: F64) -> float:
    q1, q2, q3 = np.percentile(x, [25, 50, 75])
    return 0.0 if q3 == q1 else float((q3 + q1 - 2 * q2) / (q3 - q1))


def cv(x: F64) -> float:
    if x.size == 0 or np.std(x) == 0:
        return 0.0
    return float(np.std(x) / abs(np.mean(x)))


def window_stats(times_s: F64, sizes: F64) -> dict[str, float]:
    """The measured statistics of `score_window`, from their textbook definitions."""
    intervals = np.diff(np.sort(times_s))
    period = float(np.median(intervals))
    return {
        "period_s": period,
        "interval_mad_s": mad(intervals, period),
        "interval_bowley": bowley(intervals),
        "interval_cv": cv(intervals),
        "bytes_median": float(np.median(sizes)),
        "bytes_mad": mad(sizes, float(np.median(sizes))),
        "connections": float(times_s.size),
    }
