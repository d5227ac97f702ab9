"""The lattice test: intervals that are whole multiples of one period, however many beats
are missing. For pairs seen through packet-sampled export only.

Under 1:N packet sampling a check-in of k packets is exported with probability about k / N:
at 1:100 a 12-packet HTTPS check-in about 11 % of the time. The exported check-ins are a
random thinning of the beacon's beats, so their intervals are sums of 1, 2, ... 30 beats (9
on average): a thinned lattice. The fold of `periodicity` reads that as a period with 89 %
of its beats missed, and its fit is then no better than Poisson arrivals': such a beacon was
never alerted (0 of 20 runs, 60 s or 300 s sleep, 24 h).

What stays is the phase: an interval of k beats is k P plus the sum of k jitters, so
exp(2 pi i d / P) points the same way for most intervals, while Poisson gaps much longer than
P give phases spread round the circle. The test:

1. Candidate periods: each of the `CANDIDATE_INTERVALS` shortest intervals taken as 1, 2 or
   3 beats (the shortest of 30 exported intervals is a single beat 97 % of the time at 11 %
   export), at least `LATTICE_MIN_PERIOD_S` (exporters with whole-second timestamps put
   every interval on a 1 s lattice) and ``min_period_s``.
2. Each candidate is refined by least squares on the lattice: k_i = round(d_i / P) and
   P = sum d_i / sum k_i over the intervals of 1..K beats, K doubling from 2 (the jitter of
   a k-beat interval grows as sqrt(k), so sum d / sum k weighs them right); one single-beat
   interval alone is off by its jitter, which k = 9 beats multiply.
3. The Rayleigh resultant R_n = |sum exp(2 pi i d / P)| over the intervals but the one the
   candidate came from, its p-value by Zar's approximation (Biostatistical Analysis, eq.
   27.4), the smallest over the candidates times `CANDIDATES` (Bonferroni) and times
   `REFINE_TRIALS` for the refinement, which fits the period to the phases (without it,
   simulated Poisson windows of 16 gave p <= 0.01 1.4 % of the time;
   tests/unit/test_lattice.py checks P(p <= x) <= x down to 1e-3).

Also returned: the share of the intervals within a quarter period of the lattice (one half
for Poisson gaps), which stands for the timing part of sampled pairs' score.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import F64

LATTICE_MIN_PERIOD_S = 10.0
LATTICE_MIN_INTERVALS = 6
CANDIDATE_INTERVALS = 3
CANDIDATE_BEATS = 3
CANDIDATES = CANDIDATE_INTERVALS * CANDIDATE_BEATS
REFINE_TRIALS = 2  # the refinement's look-elsewhere, bounded by simulation (module doc)
REFINE_MAX_BEATS = 64
ON_LATTICE = 0.25  # an interval within this fraction of P of a lattice point is on it


@njit(cache=True, nogil=True)
def refine_period(ds: F64, period_s: float) -> float:
    """Least-squares period of the lattice the intervals ``ds`` fall on, from ``period_s``:
    P = sum d / sum k over the intervals of 1..K beats (k = round(d / P)), K = 2, 4, ... 64."""
    p = period_s
    top = 2
    while top <= REFINE_MAX_BEATS:
        num = 0.0
        den = 0.0
        for x in ds:
            k = np.floor(x / p + 0.5)
            if 1.0 <= k <= top:
                num += x
                den += k
        if den > 0.0:
            p = num / den
        top *= 2
    return p


@njit(cache=True, nogil=True)
def rayleigh_p(resultant: float, n: int) -> float:
    """P(R_n >= resultant) for n uniform phases (Zar's approximation, clipped to [0, 1])."""
    if n <= 0:
        return 1.0
    inner = 1.0 + 4.0 * n + 4.0 * (n * n - resultant * resultant)
    p = float(np.exp(np.sqrt(max(inner, 0.0)) - (1.0 + 2.0 * n)))
    return min(1.0, max(0.0, p))


@njit(cache=True, nogil=True)
def lattice_test(ds: F64, min_period_s: float) -> tuple[float, float, float]:
    """(p, period_s, share on the lattice) of the sorted intervals ``ds``; (1, 0, 0) when
    there are too few or no candidate period qualifies. ``p`` is corrected for the
    `CANDIDATES` and the refinement."""
    m = ds.shape[0]
    best_p, best_period, best_share = 1.0, 0.0, 0.0
    if m < LATTICE_MIN_INTERVALS:
        return best_p, best_period, best_share
    floor_s = max(min_period_s, LATTICE_MIN_PERIOD_S)
    for i in range(min(CANDIDATE_INTERVALS, m)):
        for beats in range(1, CANDIDATE_BEATS + 1):
            p0 = ds[i] / beats
            if p0 < floor_s:
                continue
            period = refine_period(ds, p0)
            c = 0.0
            s = 0.0
            on = 0
            for j in range(m):
                if j == i:
                    continue
                phase = 2.0 * np.pi * ds[j] / period
                c += np.cos(phase)
                s += np.sin(phase)
                k = np.floor(ds[j] / period + 0.5)
                if k >= 1.0 and abs(ds[j] - k * period) <= ON_LATTICE * period:
                    on += 1
            p = rayleigh_p(np.sqrt(c * c + s * s), m - 1)
            if p < best_p:
                best_p, best_period, best_share = p, period, on / (m - 1)
    return min(1.0, CANDIDATES * REFINE_TRIALS * best_p), best_period, best_share
