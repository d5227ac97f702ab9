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
    q1, q3 = np.percentile(intervals, [25, 75])
    # Skewness of a spread within timestamp rounding (2.5 ms or 1 % of the period) is noise.
    significant = q3 - q1 >= max(0.0025, 0.01 * period)
    return {
        "period_s": period,
        "interval_mad_s": mad(intervals, period),
        "interval_bowley": bowley(intervals) if significant else 0.0,
        "interval_cv": cv(intervals),
        "bytes_median": float(np.median(sizes)),
        "bytes_mad": mad(sizes, float(np.median(sizes))),
        "connections": float(times_s.size),
    }


def window_score(
    times_s: F64,
    sizes: F64,
    *,
    min_period_s: float,
    weights: tuple[float, float, float],
    full_count: float,
) -> float:
    """The combined score of `score_window`, written out from the documented formula."""
    if times_s.size < 3:
        return 0.0
    st = window_stats(times_s, sizes)
    period = st["period_s"]
    if period < min_period_s or period <= 0:
        return 0.0
    interval = 0.7 * max(0.0, 1 - (st["interval_mad_s"] / period) / 0.5) + 0.3 * (
        1 - abs(st["interval_bowley"])
    )
    med = st["bytes_median"]
    if med <= 0:
        size = 1.0 if st["bytes_mad"] == 0 else 0.0
    else:
        size = max(0.0, 1 - (st["bytes_mad"] / med) / 0.5)
    count = min(1.0, times_s.size / full_count)
    w_i, w_s, w_c = weights
    return (w_i * interval + w_s * size + w_c * count) / (w_i + w_s + w_c)


def detector_alerts(
    rows: list[tuple[int, str, int]], *, history: int, window_ms: int, min_events: int,
    every: int, interval_ms: int, cooldown_ms: int, threshold: float, score_kwargs: dict,
) -> list[tuple[str, int, float]]:  # fmt: skip
    """A dict-of-lists detector with the documented rules: (pair, detected_ms, score) alerts.

    rows: (start_ms, pair, bytes) in arrival order. Each pair keeps its last `history`
    arrivals; it is scored at the arrival that makes it due, over the kept entries with
    start >= t - window, in time order.
    """
    state: dict[str, dict] = {}
    alerts = []
    for t, pair, nbytes in rows:
        s = state.setdefault(pair, {"ring": [], "count": 0, "scored_count": 0, "scored_t": t,
                                    "alert_t": None})  # fmt: skip
        s["ring"] = ([*s["ring"], (t, nbytes)])[-history:]
        s["count"] += 1
        if s["count"] < min_events:
            continue
        if s["count"] - s["scored_count"] < every and t - s["scored_t"] < interval_ms:
            continue
        window = sorted((e for e in s["ring"] if e[0] >= t - window_ms), key=lambda e: e[0])
        times = np.array([e[0] / 1000 for e in window])
        sizes = np.array([float(e[1]) for e in window])
        score = window_score(times, sizes, **score_kwargs)
        s["scored_count"], s["scored_t"] = s["count"], t
        if score >= threshold and (s["alert_t"] is None or t - s["alert_t"] >= cooldown_ms):
            s["alert_t"] = t
            alerts.append((pair, t, score))
    return alerts
