"""Slow, plain NumPy twins of the scoring kernels (periodicity, significance, sizes, score).

Written from the documented definitions with Python lists and NumPy one-liners, no scratch
buffers, so that a disagreement points at a kernel bug. Constants come from the kernel modules:
they are the specification, not the implementation.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from beaconwatch.config import ScoringConfig
from beaconwatch.domain.dtypes import F64
from beaconwatch.scoring import periodicity as per
from beaconwatch.scoring import significance as sig
from beaconwatch.scoring import sizes as size_kernels
from beaconwatch.scoring import sparse as sparse_kernels


@dataclass(frozen=True, slots=True)
class FitRef:
    period_s: float = 0.0
    mean_interval_s: float = 0.0
    jitter_ratio: float = 0.0
    shape: int = 0
    low_s: float = 0.0
    high_s: float = 0.0
    missed_ratio: float = 0.0
    outlier_ratio: float = 0.0
    singles: int = 0
    spread: float = math.inf
    quality: float = math.inf
    intervals: int = 0
    recent: bool = False


def support(singles: list[float]) -> tuple[float, float]:
    x = sorted(singles)
    m = len(x)
    if m == 1:
        return x[0], x[0]
    r = 1 if m < per.EDGE_RANK_FROM else 2
    # E[x_(i)] = a + i (b - a) / (m + 1): solve for a, b from the r-th smallest and largest.
    width = (x[m - r] - x[r - 1]) * (m + 1) / (m + 1 - 2 * r)
    return x[r - 1] - r * width / (m + 1), x[m - r] + r * width / (m + 1)


def beats_of(d: float, a: float, b: float, tol: float) -> int:
    """Smallest k >= 1 with d in [k a - tol, k b + tol], by trying k = 1, 2, ...; 0 if none."""
    if b <= 0:
        return 1 if d >= a - tol else 0
    k = 1
    while d > k * b + tol:
        k += 1
    return k if d >= k * a - tol else 0


def round_anchor(x: float, tol: float) -> tuple[int, float]:
    units = per.ROUND_UNITS_S
    for i, u in enumerate(units):
        q = math.floor(x / u + 0.5)
        if q >= 1 and abs(x - q * u) <= tol:
            return len(units) - i, q * u
    return 0, x


def shape_of(a: float, b: float, mean: float, m1: int) -> tuple[int, float, float]:
    w = b - a
    if b <= 0 or w < per.NO_JITTER * b:
        return per.SHAPE_NONE, mean, (w / b if b > 0 else 0.0)
    sig = per.ROUND_EDGE_SIGMAS * w / (m1 + 1)
    mid = (a + b) / 2

    def tol(x: float) -> float:
        return max(sig, per.ROUND_FRACTION * x, per.TOL_MIN_S)

    (r_sub, s_sub), (r_sym, s_sym), (r_add, s_add) = (
        round_anchor(b, tol(b)), round_anchor(mid, tol(mid)), round_anchor(a, tol(a))
    )  # fmt: skip
    if r_sub >= max(r_sym, r_add):
        return per.SHAPE_SUBTRACTIVE, s_sub, max(0.0, (s_sub - a) / s_sub)
    if r_sym >= r_add or a <= 0:
        return per.SHAPE_SYMMETRIC, s_sym, max(0.0, w / 2 / s_sym)
    return per.SHAPE_ADDITIVE, s_add, max(0.0, (b - s_add) / s_add)


def log_likelihood(d: F64, beats: list[int], a: float, b: float, tol: float) -> float:
    m = len(d)
    inl = [k for k in beats if k > 0]
    n_out = m - len(inl)
    q = (sum(inl) - len(inl)) / sum(inl) if inl else 0.0
    ll = 0.0
    for k in inl:
        ll += math.log(1 - q) if q < 1 else -math.inf
        ll += (k - 1) * math.log(q) if k > 1 else 0.0
        ll -= math.log(k * (b - a) + 2 * tol)
    if n_out:
        ll += n_out * math.log(n_out / m) - n_out * math.log(max(float(np.max(d)), per.TOL_MIN_S))
    if inl:
        ll += len(inl) * math.log(len(inl) / m)
    return ll


def _tol(b: float) -> float:
    return max(per.TOL_FRACTION * b, per.TOL_MIN_S)


def _refold(d: F64, split_s: float) -> tuple[float, float, int]:
    singles = [x for x in d if x < split_s]
    if len(singles) < 2:
        return 0.0, 0.0, len(singles)
    a, b = support(singles)
    for _ in range(per.REFOLD_ROUNDS):
        new = [x for x in d if beats_of(x, a, b, _tol(b)) == 1]
        changed = sorted(new) != sorted(singles)
        singles = new
        if len(singles) < 2 or not changed:
            break
        a, b = support(singles)
    return max(a, 0.0), max(a, b), len(singles)


def fit_intervals(d: F64) -> FitRef:
    m = len(d)
    if m < 3 or np.median(d) <= 0:
        return FitRef(intervals=m)
    p = p_raw = float(np.median(d))
    for _ in range(per.FOLD_ROUNDS):
        p_new = float(np.median([x / max(1.0, math.floor(x / p + 0.5)) for x in d]))
        if abs(p_new - p) <= 1e-9 * p:
            break
        p = p_new
    low = float(np.sort(d)[1 if m >= per.EDGE_RANK_FROM else 0])  # robust shortest interval
    splits = [1.5 * p] + ([1.5 * p_raw] if abs(p_raw - p) > 1e-9 * p else []) + [2 * p_raw]
    splits.append(1.5 * low)
    best = (-math.inf, 0.0, 0.0)
    for split in splits:
        a, b, m1 = _refold(d, split)
        if m1 < 2:
            continue
        ll = log_likelihood(d, [beats_of(x, a, b, _tol(b)) for x in d], a, b, _tol(b))
        if ll > best[0]:
            best = (ll, a, b)
    if best[0] == -math.inf:
        return FitRef(intervals=m)
    _, a, b = best
    beats = [beats_of(x, a, b, _tol(b)) for x in d]
    singles = [x for x, k in zip(d, beats, strict=True) if k == 1]
    if not singles:
        return FitRef(intervals=m)
    inl = [k for k in beats if k > 0]
    mean = float(np.mean(singles))
    shape, period, jitter = shape_of(a, b, mean, len(singles))
    spread = (b - a) / mean if mean > 0 and len(singles) >= 2 else math.inf
    missed = (sum(inl) - len(inl)) / sum(inl) if inl else 0.0
    outliers = (m - len(inl)) / m
    return FitRef(period, mean, jitter, shape, a, b, missed, outliers, len(singles), spread,
                  spread + outliers + missed, m)  # fmt: skip


def fit_window(times_s: F64) -> FitRef:
    d = np.diff(times_s)
    whole = fit_intervals(d)
    recent_events = (len(times_s) + 1) // 2
    if recent_events < per.RECENT_MIN_EVENTS:
        return whole
    recent = fit_intervals(d[len(d) - (recent_events - 1) :])
    if (
        recent.quality + per.RECENT_MARGIN < whole.quality
        and recent.quality < per.RECENT_RATIO * whole.quality
    ):
        return dataclasses.replace(recent, recent=True)
    return whole


def p_value(null_quantiles: F64, statistic: float) -> float:
    """The first level P_j with statistic < quantile j of the row; 1.0 if none."""
    if not statistic < math.inf:
        return 1.0
    for level, quantile in zip(sig.P_LEVELS, null_quantiles, strict=True):
        if statistic < quantile:
            return float(level)
    return 1.0


def best_p_value(table: F64) -> float:
    """The lowest level with a finite (resolved) quantile in the rows of windows that are tested."""
    resolved = [
        float(level)
        for row in table[3:]
        for level, quantile in zip(sig.P_LEVELS, row, strict=True)
        if quantile > -math.inf
    ]
    return min(resolved, default=1.0)


def phase_resultant(d: F64, period_s: float) -> float:
    if len(d) == 0 or period_s <= 0:
        return 0.0
    return float(abs(np.mean(np.exp(2j * np.pi * np.asarray(d) / period_s))))


def size_regularity(sizes: F64) -> tuple[float, float, float]:
    if len(sizes) == 0:
        return 0.0, 0.0, 0.0
    med = float(np.median(sizes))
    mad = float(np.median(np.abs(sizes - med)))
    ratio = mad / (max(med, 0.0) + size_kernels.PAD_ALLOWANCE_B) / size_kernels.SIZE_TOLERANCE
    return med, mad, 1 - min(1.0, max(0.0, ratio))


def gap_floor(d: F64) -> float:
    """The 10th-percentile interval (nearest rank, rounded up) over the median interval."""
    if len(d) == 0 or np.median(d) <= 0:
        return 0.0
    return float(np.sort(d)[math.ceil(0.1 * len(d)) - 1] / np.median(d))


def null_row(table: F64, intervals: int) -> F64 | None:
    if intervals < 3 or table.shape[0] <= 3:
        return None
    row: F64 = table[min(intervals, table.shape[0] - 1)]
    return row


_DEFAULTS = ScoringConfig()
# (sparse_max_connections, sparse_size_density, sparse_min_bytes)
SPARSE_DEFAULTS = (
    _DEFAULTS.sparse_max_connections, _DEFAULTS.sparse_size_density, _DEFAULTS.sparse_min_bytes
)  # fmt: skip


def spacing_p_value(d: F64) -> float:
    """P(all m uniform spacings within [1 - r, 1 + r] / m), r the largest relative deviation of
    ``d`` from its mean, by inclusion-exclusion over the spacings above the top."""
    m = len(d)
    if m < 2 or sum(d) <= 0:
        return 1.0
    r = max(abs(x / (sum(d) / m) - 1) for x in d)
    lo, hi = max(0.0, (1 - r) / m), (1 + r) / m
    terms = [(-1) ** k * math.comb(m, k) * max(0.0, 1 - m * lo - k * (hi - lo)) ** (m - 1)
             for k in range(m + 1)]  # fmt: skip
    return min(1.0, max(0.0, sum(terms)))


def size_p_value(sizes: F64, density: float, min_bytes: float) -> float:
    """n (f R)^(n-1) over all sizes; from 4 on, also n (n-1) (f R')^(n-2) without the
    largest, the better one doubled."""
    n = len(sizes)
    if n < 2 or density <= 0 or min(sizes) < min_bytes or min(sizes) <= 0:
        return 1.0
    srt = sorted(sizes)

    def bound(k: int, spread: float) -> float:
        return min(1.0, k * (density * max(spread, sparse_kernels.SIZE_RESOLUTION_LN)) ** (k - 1))

    p = bound(n, math.log(srt[-1] / srt[0]))
    if n < 4:
        return p
    return min(1.0, 2 * min(p, n * bound(n - 1, math.log(srt[-2] / srt[0]))))


def sparse_p_value(d: F64, sizes: F64, density: float, min_bytes: float) -> float:
    """Fisher's method for the two: q = p_spacing p_size, p = q (1 - ln q)."""
    p_spacing = spacing_p_value(d)
    if len(sizes) < 2 or density <= 0 or min(sizes) < min_bytes or min(sizes) <= 0:
        return p_spacing  # sizes not tested
    q = p_spacing * size_p_value(sizes, density, min_bytes)
    return min(1.0, q * (1 - math.log(q))) if q > 0 else 0.0


def is_sparse(n: int, sparse: tuple[float, float, float]) -> bool:
    return sparse_kernels.SPARSE_MIN_CONNECTIONS <= n <= sparse[0]


def window_stats(
    times_s: F64, sizes: F64, tables: F64, sparse: tuple[float, float, float] = SPARSE_DEFAULTS
) -> dict[str, float]:
    """The measured statistics of `score_window`; ``tables`` in `NullTable` order (fit, interval
    CV, negated gap floor; the lattice's, for sampled pairs only, is not read here: see
    tests/unit/test_lattice.py); ``sparse`` as `SPARSE_DEFAULTS`."""
    order = np.argsort(times_s, kind="stable")
    times_s, sizes = times_s[order], sizes[order]
    d = np.diff(times_s)
    fit = fit_window(times_s)
    used = d[len(d) - fit.intervals :] if fit.recent else d
    fit_row, cv_row, floor_row = (null_row(table, len(d)) for table in tables[:3])
    p_fit = 1.0 if fit_row is None else p_value(fit_row, fit.quality)
    interval_cv = float(np.std(d) / np.mean(d)) if len(d) and np.std(d) > 0 else 0.0
    p_cv = 1.0 if cv_row is None else p_value(cv_row, interval_cv)
    floor = gap_floor(d)
    p_floor = 1.0 if floor_row is None else p_value(floor_row, -floor)
    p = min(1.0, 3 * min(p_fit, p_cv, p_floor))  # Bonferroni over the three tests
    if is_sparse(len(times_s), sparse):  # a fourth test: Bonferroni over four
        p_sparse = sparse_p_value(d, sizes, sparse[1], sparse[2])
        p = min(1.0, 4 * min(p_fit, p_cv, p_floor, p_sparse))
    med_b, mad_b, reg = size_regularity(sizes)
    return {
        "period_s": fit.period_s,
        "mean_interval_s": fit.mean_interval_s,
        "jitter_ratio": fit.jitter_ratio,
        "jitter_shape": float(fit.shape),
        "missed_ratio": fit.missed_ratio,
        "outlier_ratio": fit.outlier_ratio,
        "connections": float(len(times_s)),
        "single_intervals": float(fit.singles),
        "confidence": 1 - p,
        "phase_r": phase_resultant(used, fit.mean_interval_s),
        "size_regularity": reg,
        "bytes_median": med_b,
        "bytes_mad": mad_b,
        "regime_recent": float(fit.recent),
        "spread": fit.spread,
        "median_interval_s": float(np.median(d)) if len(d) else 0.0,
        "interval_cv": interval_cv,
        "gap_floor": floor,
    }


def window_score(
    times_s: F64,
    sizes: F64,
    *,
    tables: F64,
    min_period_s: float,
    weights: tuple[float, float, float],
    full_count: float,
    spread_free: float,
    spread_tolerance: float,
    min_confidence: float,
    full_confidence: float,
    missed_allowance: float,
    sparse: tuple[float, float, float] = SPARSE_DEFAULTS,
    bulk_rate_bytes_s: float = 16_384.0,
) -> float:
    """The combined score of `score_window`, written out from the documented formula."""
    if len(times_s) < 4:
        return 0.0
    st = window_stats(times_s, sizes, tables, sparse)
    if st["median_interval_s"] < min_period_s or st["median_interval_s"] <= 0:
        return 0.0

    def clip01(x: float) -> float:
        return min(1.0, max(0.0, x))

    fade = (st["spread"] - spread_free) / (spread_tolerance - spread_free)
    timing = (1 - clip01(fade)) * (1 - st["outlier_ratio"])
    count = min(1.0, len(times_s) / full_count)
    w_t, w_s, w_c = weights
    base = (w_t * timing + w_s * st["size_regularity"] + w_c * count) / (w_t + w_s + w_c)
    # Linear in log10(1/p) from p = 1 - min_confidence (0) to the smaller p of
    # 1 - full_confidence and the best the table resolves (1).
    p = 1.0 - st["confidence"]
    best = min(1.0, 3 * min(best_p_value(table) for table in tables[:3]))
    if is_sparse(len(times_s), sparse):
        best = 0.0  # the closed form resolves any p
    p_start, p_full = 1.0 - min_confidence, max(1.0 - full_confidence, best)
    if p_full >= p_start:
        gate = 1.0 if p <= p_full else 0.0
    else:
        gate = clip01(math.log10(p_start / max(p, 1e-300)) / math.log10(p_start / p_full))
    missed = clip01((st["missed_ratio"] - missed_allowance) / (1 - missed_allowance))
    # Bulk transfer: median bytes per second of the median interval, above the rate, fading
    # to 0 at four times it.
    rate = st["bytes_median"] / st["median_interval_s"]
    bulk = 1.0
    if bulk_rate_bytes_s > 0 and rate > bulk_rate_bytes_s:
        bulk = clip01(1 - (rate - bulk_rate_bytes_s) / (3 * bulk_rate_bytes_s))
    return gate * base * (1 - missed) * bulk
