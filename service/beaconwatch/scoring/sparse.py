"""Evidence from a handful of check-ins: slow beacons in their first days.

A 12 h beacon has 6 check-ins in 72 h, a 24 h one 3: few intervals for the simulated null
tables of `significance` and `interval_significance`, which ask more of them than an exact
test needs (3 of 20 such 12 h beacons with 10 % jitter stayed below the threshold with the
tables alone). Two tests with closed forms help, for windows of 4 up to
``sparse_max_connections`` connections:

- **Spacing**, exact. Given the first and last of n Poisson arrivals, the n - 2 in between
  are uniform, so the m = n - 1 intervals over their sum are uniform on the simplex
  (Dirichlet(1, ..., 1)), whatever the rate. The statistic is the largest relative deviation
  r = max |d_i / mean - 1| (lower = more regular), and

      P(r' <= r) = P(all x_i in [lo, hi]),  lo = (1 - r) / m,  hi = (1 + r) / m,
                 = sum_k (-1)^k C(m, k) (1 - m lo - k (hi - lo))_+^(m - 1)

  (inclusion-exclusion over the intervals above hi, after shifting each by lo). For m = 2
  this is r itself: two intervals within 10 % of each other happen one time in ten.
  Missed check-ins break it (an interval of two beats is r >= 0.5); the tables' fold covers
  that for longer windows.
- **Sizes**, a bound. A check-in with no tasking is the same few hundred bytes to a few kB
  every time (padding aside), while a benign pair's connections carry whatever was asked
  for. Under a null where a pair's log byte counts are independent with a density of at most
  f per unit of ln(bytes), n of them fall within a log-range R with probability at most
  n (f R)^(n - 1) (union over which one is the smallest). R is floored at
  ``SIZE_RESOLUTION_LN`` (1 %): exact repeats are no stronger than that. Connections below
  ``sparse_min_bytes`` carry no payload to compare (an unanswered SYN is always 60 bytes),
  so a window holding one gives no size evidence (p = 1).

Under the null, timing and sizes are independent, and the two p-values are combined by
Fisher's method (q = p_spacing p_size, p = q (1 - ln q)): with a few check-ins neither is
strong alone (10 % jitter, 4 check-ins: p_spacing ~ 2e-3), together they can be. The
detector adds this p as a fourth test to the Bonferroni combination of
`window_score.score_window`.

What real traffic says (docs/evaluation.md): the size null holds for the synthetic browsing
(f = 0.37 fits it at every range measured), not for a real host's automated clients, which
repeat a request to the byte: on the benign Windows capture 25 % of consecutive triples of a
pair's connections lie within 1 % (f ~ 30-40), and with f = 1 it alerted on an 8 h scheduled
task (3 check-ins, exact timing, identical sizes) and on an HTTP poller. So sizes are off by
default (``sparse_size_density`` = 0) and the spacing test alone is used, from 4 connections
(``min_events_slow``): two intervals are at best p = r, no evidence at the ~1e5 windows a
network tests, and a scheduled task's are exact.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import F64

SIZE_RESOLUTION_LN = 0.01  # log-ranges below 1 % count as 1 %: identical sizes prove no more
# Three intervals: two are at best p = r, and a scheduled task's are exact (module docstring).
SPARSE_MIN_CONNECTIONS = 4


@njit(cache=True, nogil=True)
def _binomial(m: int, k: int) -> float:
    c = 1.0
    for i in range(k):
        c = c * (m - i) / (i + 1)
    return c


@njit(cache=True, nogil=True)
def spacing_p_value(intervals: F64) -> float:
    """Exact P(max |d_i / mean - 1| <= observed) of Poisson arrivals, given their count."""
    m = intervals.shape[0]
    if m < 2:
        return 1.0
    total = 0.0
    for i in range(m):
        total += intervals[i]
    if not total > 0.0:
        return 1.0
    r = 0.0
    for i in range(m):
        r = max(r, abs(m * intervals[i] / total - 1.0))
    lo = max(0.0, (1.0 - r) / m)
    width = (1.0 + r) / m - lo
    p = 0.0
    for k in range(m + 1):
        rest = 1.0 - m * lo - k * width
        if rest <= 0.0:
            break
        term = _binomial(m, k) * rest ** (m - 1)
        p += -term if k % 2 else term
    return min(1.0, max(0.0, p))


@njit(cache=True, nogil=True)
def _range_bound(n: int, spread_ln: float, density_per_ln: float) -> float:
    """P(n independent log sizes, density <= f, within a log-range R) <= n (f R)^(n - 1)."""
    return min(1.0, n * (density_per_ln * max(spread_ln, SIZE_RESOLUTION_LN)) ** (n - 1))


@njit(cache=True, nogil=True)
def size_p_value(sizes: F64, density_per_ln: float, min_bytes: float) -> float:
    """Bound on the window's sizes being this close by chance; 1.0 when they say nothing.

    From 4 connections, one check-in may carry tasking (bigger): the n - 1 smallest are
    tested too, bounded by n (n - 1) (f R')^(n - 2) (which one is left out, which one is the
    smallest), and the better of the two bounds is doubled (Bonferroni)."""
    n = sizes.shape[0]
    if n < 2 or density_per_ln <= 0.0:
        return 1.0
    smallest = sizes[0]
    largest = second = -np.inf
    for i in range(n):
        smallest = min(smallest, sizes[i])
        if sizes[i] > largest:
            largest, second = sizes[i], largest
        elif sizes[i] > second:
            second = sizes[i]
    if smallest < min_bytes or smallest <= 0.0:
        return 1.0
    p = _range_bound(n, float(np.log(largest / smallest)), density_per_ln)
    if n < 4:
        return p
    p_drop = _range_bound(n - 1, float(np.log(second / smallest)), density_per_ln) * n
    return float(min(1.0, 2.0 * min(p, p_drop)))


@njit(cache=True, nogil=True)
def sizes_say_something(sizes: F64, density_per_ln: float, min_bytes: float) -> bool:
    """Whether the window's sizes are tested at all (a choice blind to how close they are)."""
    if sizes.shape[0] < 2 or density_per_ln <= 0.0:
        return False
    smallest = sizes[0]
    for i in range(1, sizes.shape[0]):
        smallest = min(smallest, sizes[i])
    return bool(smallest >= min_bytes and smallest > 0.0)


@njit(cache=True, nogil=True)
def sparse_p_value(intervals: F64, sizes: F64, density_per_ln: float, min_bytes: float) -> float:
    """Spacing and sizes combined (``sizes`` has one more entry than ``intervals``).

    The product q of two independent p-values is not one itself (P(q <= a) = a (1 - ln a),
    Fisher's method for two), so that is the combined p. When the sizes are not tested (a
    choice that does not look at how close they are: choosing by the bound's value would
    reject too often), the spacing's p is used as it is."""
    p_spacing = spacing_p_value(intervals)
    if not sizes_say_something(sizes, density_per_ln, min_bytes):
        return p_spacing
    q = p_spacing * size_p_value(sizes, density_per_ln, min_bytes)
    return min(1.0, q * (1.0 - np.log(q))) if q > 0.0 else 0.0
