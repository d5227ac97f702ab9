"""Period, jitter and missed check-ins of one window of connection start times.

A beacon sleeps S between check-ins with uniform jitter. The single-beat intervals are then
uniform on a support [a, b]:

- Cobalt Strike subtracts: U[S(1 - j), S]            -> S = b, j = (b - a) / b
- Sliver adds seconds:     S + U[0, J)               -> S = a, j = (b - a) / a
- Empire, PoshC2, Havoc:   U[S(1 - j), S(1 + j)]     -> S = (a + b) / 2, j = (b - a) / (a + b)

Missed check-ins make intervals of about k beats (k = 2, 3, ...); extra connections (an
operator's interactive session on the same pair) make intervals shorter than a.

The fit (`fit_intervals`):
1. p = median interval, then fold: k_i = max(1, round(d_i / p)), p = median(d_i / k_i), until
   p settles (a few rounds).
2. The intervals with k_i = 1 are the first guess of the single beats; their support [a, b] is
   estimated from order statistics: for a uniform sample of size m, E[x_(i)] = a + i (b - a) /
   (m + 1), so the r-th smallest and r-th largest give unbiased a and b. r = 2 once there are 6
   singles, so one stray connection does not set an edge.
3. Re-fold: k = the smallest integer with d in [k a - tol, k b + tol], tol = max(1 % of b,
   50 ms); an interval that fits no k is an outlier. The support is re-estimated from the new
   singles and the re-fold repeated until the singles stop changing (the extrapolating edge
   estimate lets b grow when step 1 cut the top of a wide jitter off).

The interval distribution cannot tell the three jitter shapes apart (each is uniform on
[a, b]); the shape is a guess from which anchor is the roundest number of seconds (operators
type "sleep 60", "jitter 30"): b for subtractive, (a + b) / 2 for symmetric, a for additive,
rounder meaning a multiple of a larger unit in 3600 > 900 > 300 > 60 > 30 > 15 > 10 > 5 > 1 s,
within the edge uncertainty (about (b - a) / (singles + 1)) or 1 %. Ties go to subtractive
(Cobalt Strike is the most common), then symmetric. A sleep that is not a round number, or
an anchor estimated from few singles, makes the shape unreliable; the period S and the
support [a, b] are not affected by the guess. Below 3 % jitter the shape is "none" and S is
the mean single-beat interval.

Regime change: operators change the sleep mid-run. `fit_window` also fits the most recent half
of the window (when it has at least 6 events) and uses it when its fit is clearly better.

Fit quality (lower is better): relative spread (b - a) / mean single interval, plus the share
of outliers, plus the missed ratio (a 60 s beacon that became a 300 s one folds perfectly at
60 s with 4 missed beats in 5; the recent half folds at 300 s with none).
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
import numpy.typing as npt
from numba import njit

from beaconwatch.scoring.kernels import median_sorted, sort_small

F64 = npt.NDArray[np.float64]


class Fit(IntEnum):
    """Slots of a fit vector filled by `fit_intervals` / `fit_window`."""

    PERIOD_S = 0  # nominal sleep S
    MEAN_INTERVAL_S = 1  # mean single-beat interval
    JITTER_RATIO = 2
    JITTER_SHAPE = 3  # Shape
    LOW_S = 4  # a: low edge of the single-beat interval support
    HIGH_S = 5  # b: high edge
    MISSED_RATIO = 6  # missed beats / expected beats
    OUTLIER_RATIO = 7  # intervals fitting no whole number of beats / intervals
    SINGLES = 8  # single-beat intervals
    SPREAD = 9  # (b - a) / mean single interval; inf if there are fewer than 2 singles
    QUALITY = 10  # SPREAD + OUTLIER_RATIO + MISSED_RATIO; lower is better
    INTERVALS = 11  # intervals fitted
    RECENT = 12  # 1 if the recent half of the window was used (fit_window)
    SIZE = 13


N_FIT = int(Fit.SIZE)


class Shape(IntEnum):
    NONE = 0
    SUBTRACTIVE = 1
    SYMMETRIC = 2
    ADDITIVE = 3


# Plain ints for the kernels (numba cannot store an IntEnum member in a float array).
SHAPE_NONE = 0
SHAPE_SUBTRACTIVE = 1
SHAPE_SYMMETRIC = 2
SHAPE_ADDITIVE = 3


FOLD_ROUNDS = 6  # median folding rounds (step 1); it settles in 2-3
REFOLD_ROUNDS = 8  # support re-fold rounds (step 3); usually 1-3
TOL_FRACTION = 0.01  # interval tolerance of the re-fold, relative to b...
TOL_MIN_S = 0.05  # ...and at least this (timestamps are ms, exporters jitter a little)
EDGE_RANK_FROM = 6  # singles from which the 2nd order statistic sets an edge (not the extreme)
NO_JITTER = 0.03  # below this (b - a) / b the shape is NONE
ROUND_UNITS_S = (3600.0, 900.0, 300.0, 60.0, 30.0, 15.0, 10.0, 5.0, 1.0)
ROUND_EDGE_SIGMAS = 3.0  # anchor tolerance in edge-estimate standard errors (tuned: 1.5-4)
ROUND_FRACTION = 0.01  # ...or this fraction of the anchor
RECENT_MIN_EVENTS = 6
RECENT_MARGIN = 0.2  # the recent half must beat the whole window's quality by this...
RECENT_RATIO = 0.7  # ...and be below this fraction of it


@njit(cache=True, nogil=True)
def support_sorted(x_sorted: F64) -> tuple[float, float]:
    """Unbiased uniform-support edges (a, b) from the r-th smallest and largest of a sorted sample.

    r = 1 below `EDGE_RANK_FROM` values, else 2. One value gives (x, x).
    """
    m = x_sorted.shape[0]
    if m == 1:
        return x_sorted[0], x_sorted[0]
    r = 1 if m < EDGE_RANK_FROM else 2
    lo = x_sorted[r - 1]
    hi = x_sorted[m - r]
    width = (hi - lo) * (m + 1) / (m + 1 - 2 * r)
    step = r * width / (m + 1)
    return lo - step, hi + step


@njit(cache=True, nogil=True)
def refold_beats(d: float, a: float, b: float, tol: float) -> int:
    """Smallest k >= 1 with d in [k a - tol, k b + tol]; 0 if none (an outlier)."""
    if d < a - tol:
        return 0
    k = max(1, int(np.ceil((d - tol) / b))) if b > 0.0 else 1
    if d >= k * a - tol:
        return k
    return 0


@njit(cache=True, nogil=True)
def round_anchor(x: float, tol: float) -> tuple[int, float]:
    """(level, value): how round ``x`` seconds is and the round value it is within ``tol`` of.

    Level 9 for a multiple of 3600 s, ..., 1 for a whole second, 0 for none (value = x).
    """
    n_units = len(ROUND_UNITS_S)
    for i in range(n_units):
        u = ROUND_UNITS_S[i]
        q = np.floor(x / u + 0.5)
        if q >= 1.0 and abs(x - q * u) <= tol:
            return n_units - i, q * u
    return 0, x


@njit(cache=True, nogil=True)
def jitter_shape(a: float, b: float, mean: float, singles: int) -> tuple[int, float, float]:
    """(shape, nominal period S, jitter ratio j) from the single-beat support [a, b].

    S is the chosen anchor snapped to the round value it matched (the operator's setting).
    """
    width = b - a
    if b <= 0.0 or width < NO_JITTER * b:
        return SHAPE_NONE, mean, (width / b if b > 0.0 else 0.0)
    edge_tol = ROUND_EDGE_SIGMAS * width / (singles + 1)
    mid = 0.5 * (a + b)
    r_sub, s_sub = round_anchor(b, max(edge_tol, ROUND_FRACTION * b, TOL_MIN_S))
    r_sym, s_sym = round_anchor(mid, max(edge_tol, ROUND_FRACTION * mid, TOL_MIN_S))
    r_add, s_add = round_anchor(a, max(edge_tol, ROUND_FRACTION * a, TOL_MIN_S))
    if r_sub >= r_sym and r_sub >= r_add:
        return SHAPE_SUBTRACTIVE, s_sub, max(0.0, (s_sub - a) / s_sub)
    if r_sym >= r_add or a <= 0.0:
        return SHAPE_SYMMETRIC, s_sym, max(0.0, 0.5 * width / s_sym)
    return SHAPE_ADDITIVE, s_add, max(0.0, (b - s_add) / s_add)


@njit(cache=True, nogil=True)
def _fail(fit: F64, m: int) -> None:
    fit[:] = 0.0
    fit[Fit.SPREAD] = np.inf
    fit[Fit.QUALITY] = np.inf
    fit[Fit.INTERVALS] = m


@njit(cache=True, nogil=True)
def _singles_sorted(d_sorted: F64, beats: F64, out: F64) -> int:
    """Copy the intervals with one beat into ``out`` (sorted, as ``d_sorted`` is); returns
    how many."""
    m1 = 0
    for i in range(d_sorted.shape[0]):
        if beats[i] == 1.0:
            out[m1] = d_sorted[i]
            m1 += 1
    return m1


@njit(cache=True, nogil=True)
def _xlogy(x: float, y: float) -> float:
    return 0.0 if x == 0.0 else x * np.log(y)


@njit(cache=True, nogil=True)
def log_likelihood(d: F64, beats: F64, a: float, b: float, tol: float) -> float:
    """Log-likelihood of the intervals under the fitted model, with MLE mixing shares.

    A k-beat interval is taken as uniform on [k a - tol, k b + tol] (the sum of k uniforms is
    narrower in the middle; the approximation only ranks candidate fits), k ~ geometric with
    the missed ratio, and an outlier as uniform on [0, longest interval].
    """
    m = d.shape[0]
    longest = 0.0
    outliers = 0.0
    extra = 0.0
    total = 0.0
    ll = 0.0
    last_k = 0.0  # the sorted intervals' beats come in runs: one log per run
    log_width = 0.0
    for i in range(m):
        longest = max(longest, d[i])
        k = beats[i]
        if k == 0.0:
            outliers += 1.0
        else:
            extra += k - 1.0
            total += k
            if k != last_k:
                last_k = k
                log_width = np.log(k * (b - a) + 2.0 * tol)
            ll -= log_width
    inliers = m - outliers
    if total > 0.0:
        # Each inlier contributes log(1 - q) + (k - 1) log q, q = extra / total.
        ll += _xlogy(inliers, inliers / total) + _xlogy(extra, extra / total)
    ll += _xlogy(outliers, outliers / m) + _xlogy(inliers, inliers / m)
    if outliers > 0.0:
        ll -= outliers * np.log(max(longest, TOL_MIN_S))
    return ll


@njit(cache=True, nogil=True)
def _singles_range(ds: F64, a: float, b: float, tol: float) -> tuple[int, int]:
    """[lo, hi): the sorted intervals ``ds`` that `refold_beats` counts as one beat.

    One beat means d >= a - tol and ceil((d - tol) / b) <= 1: both tests are monotone in d,
    so the singles are a contiguous run of the sorted intervals, found by bisection with the
    very expressions `refold_beats` evaluates (same floating-point outcome)."""
    m = ds.shape[0]
    lo, hi = 0, m
    while lo < hi:  # first d with refold_beats(d) != 0 on the low side
        mid = (lo + hi) // 2
        if ds[mid] < a - tol:
            lo = mid + 1
        else:
            hi = mid
    first = lo
    if b <= 0.0:
        return first, m
    lo, hi = first, m
    while lo < hi:  # first d needing two or more beats
        mid = (lo + hi) // 2
        if max(1, int(np.ceil((ds[mid] - tol) / b))) == 1:
            lo = mid + 1
        else:
            hi = mid
    return first, lo


@njit(cache=True, nogil=True)
def _refold(ds: F64, below: int) -> tuple[float, float, int]:
    """Steps 2-3 from the first guess of the single beats, the ``below`` shortest of the
    sorted intervals ``ds``: (a, b, singles); singles < 2 = no fit. The singles are always a
    run of ``ds`` (`_singles_range`), so a round costs a bisection, not a pass and a sort."""
    lo = 0
    hi = below
    m1 = hi - lo
    if m1 < 2:
        return 0.0, 0.0, m1
    a, b = support_sorted(ds[lo:hi])
    for _ in range(REFOLD_ROUNDS):
        tol = max(TOL_FRACTION * b, TOL_MIN_S)
        new_lo, new_hi = _singles_range(ds, a, b, tol)
        changed = new_lo != lo or new_hi != hi
        lo, hi = new_lo, new_hi
        m1 = hi - lo
        if m1 < 2 or not changed:
            break
        a, b = support_sorted(ds[lo:hi])
    return max(a, 0.0), max(a, b), m1


@njit(cache=True, nogil=True)
def _set_beats(d: F64, beats: F64, a: float, b: float, tol: float) -> None:
    for i in range(d.shape[0]):
        beats[i] = float(refold_beats(d[i], a, b, tol))


@njit(cache=True, nogil=True)
def fit_intervals(d: F64, work: F64, fit: F64) -> None:
    """Fit the folded uniform-jitter model to the intervals ``d`` (any order, >= 3 of them).

    ``work`` is (3, >= len(d)) scratch; ``fit`` (length `N_FIT`) receives the result.
    """
    m = d.shape[0]
    if m < 3:
        _fail(fit, m)
        return
    # The model is blind to the order of the intervals: work on them sorted.
    ds = work[0, :m]
    beats = work[1, :m]
    singles = work[2, :m]
    ds[:] = d
    sort_small(ds)
    p_raw = median_sorted(ds)
    if p_raw <= 0.0:
        _fail(fit, m)
        return
    low = ds[1] if m >= EDGE_RANK_FROM else ds[0]
    # 1. Median folding (in the singles row, free until step 2).
    scratch = singles
    p = p_raw
    for _ in range(FOLD_ROUNDS):
        for i in range(m):
            scratch[i] = ds[i] / max(1.0, np.floor(ds[i] / p + 0.5))
        sort_small(scratch)
        p_new = median_sorted(scratch)
        if abs(p_new - p) <= 1e-9 * p:
            break
        p = p_new
    # 2./3. Candidate first guesses of the single beats; the likeliest fit wins. Under wide
    # jitter (b > 2a) folding alone settles on a too-short support (its top read as doubles);
    # when most beats are missed the median is a multiple, and the shortest intervals are the
    # better guess.
    # A guess is the set {d < split_s}: two splits with as many intervals below them give the
    # same fit, which is computed once (most windows of a clean beacon need one).
    best_ll = -np.inf
    best_a = 0.0
    best_b = 0.0
    tried_0 = tried_1 = tried_2 = -1
    for c in range(4):
        if c == 0:
            split_s = 1.5 * p
        elif c == 1:
            split_s = 1.5 * p_raw
            if abs(p_raw - p) <= 1e-9 * p:
                continue
        elif c == 2:
            split_s = 2.0 * p_raw
        else:
            split_s = 1.5 * low
        below = 0
        while below < m and ds[below] < split_s:
            below += 1
        if below in (tried_0, tried_1, tried_2):
            continue
        if tried_0 < 0:
            tried_0 = below
        elif tried_1 < 0:
            tried_1 = below
        else:
            tried_2 = below
        a, b, m1 = _refold(ds, below)
        if m1 < 2:
            continue
        tol = max(TOL_FRACTION * b, TOL_MIN_S)
        _set_beats(ds, beats, a, b, tol)
        ll = log_likelihood(ds, beats, a, b, tol)
        if ll > best_ll:
            best_ll, best_a, best_b = ll, a, b
    if best_ll == -np.inf:
        _fail(fit, m)
        return
    a, b = best_a, best_b
    _set_beats(ds, beats, a, b, max(TOL_FRACTION * b, TOL_MIN_S))
    m1 = _singles_sorted(ds, beats, singles)
    if m1 < 1:
        _fail(fit, m)
        return
    expected = 0.0
    outliers = 0
    for i in range(m):
        if beats[i] == 0.0:
            outliers += 1
        else:
            expected += beats[i]
    mean = singles[:m1].sum() / m1
    shape, period, jitter = jitter_shape(a, b, mean, m1)
    spread = (b - a) / mean if mean > 0.0 and m1 >= 2 else np.inf
    missed = (expected - (m - outliers)) / expected if expected > 0.0 else 0.0
    outlier_ratio = outliers / m
    fit[Fit.PERIOD_S] = period
    fit[Fit.MEAN_INTERVAL_S] = mean
    fit[Fit.JITTER_RATIO] = jitter
    fit[Fit.JITTER_SHAPE] = shape
    fit[Fit.LOW_S] = a
    fit[Fit.HIGH_S] = b
    fit[Fit.MISSED_RATIO] = missed
    fit[Fit.OUTLIER_RATIO] = outlier_ratio
    fit[Fit.SINGLES] = m1
    fit[Fit.SPREAD] = spread
    fit[Fit.QUALITY] = spread + outlier_ratio + missed
    fit[Fit.INTERVALS] = m
    fit[Fit.RECENT] = 0.0


@njit(cache=True, nogil=True)
def recent_intervals(n_events: int) -> int:
    """Intervals of the recent half of a window of ``n_events``; 0 if it is too short to fit."""
    recent_events = (n_events + 1) // 2
    if recent_events < RECENT_MIN_EVENTS:
        return 0
    return recent_events - 1


@njit(cache=True, nogil=True)
def fit_window(times_s: F64, work: F64, fit: F64, fit_recent: F64) -> None:
    """Fit the window's intervals, or its recent half's when that fits clearly better.

    ``times_s`` sorted ascending; ``work`` is (4, >= len(times_s)) scratch: row 0 receives the
    intervals. ``fit`` receives the chosen fit (Fit.RECENT says which); ``fit_recent`` is
    scratch for the recent half's fit.
    """
    n = times_s.shape[0]
    m = max(n - 1, 0)
    d = work[0, :m]
    for i in range(m):
        d[i] = times_s[i + 1] - times_s[i]
    fit_intervals(d, work[1:], fit)
    m_recent = recent_intervals(n)
    q_all = fit[Fit.QUALITY]
    if m_recent == 0 or q_all <= RECENT_MARGIN:
        return  # qualities are >= 0: no recent half could beat this one by the margin
    fit_intervals(d[m - m_recent :], work[1:], fit_recent)
    q_recent = fit_recent[Fit.QUALITY]
    if q_recent + RECENT_MARGIN < q_all and q_recent < RECENT_RATIO * q_all:
        fit[:] = fit_recent
        fit[Fit.RECENT] = 1.0
