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
3. A weighted Rayleigh resultant over the intervals but the one the candidate came from:
   Z = |sum w_k exp(2 pi i d / P)|^2 / sum w_k^2, w_k = exp(-decay k), k = max(1, round(d / P)).
   The jitter of k independent sleeps adds up like a random walk (its spread grows as
   sqrt(k)), so an interval of k beats keeps exp(-k sigma^2 / 2) of its phase's resultant:
   at 10 % uniform jitter 0.94 for one beat, 0.55 for 9, 0.19 for 25. The plain resultant
   weighs them all alike, so the long intervals' noise drowned the short ones' signal (1:100
   sampled 300 s beacons: 7 of 20 missed, about 32 exported check-ins a day, 9 beats apart on
   average). The weights are the expected resultants, for the jitter unknown: each decay of
   `DECAYS` (about 5 %, 10 % and 18 % uniform jitter a beat) is tried and the largest Z kept.
4. The statistic is -max Z over the candidates and decays (lower = more regular); its p-value
   comes from a null table of simulated Poisson windows (`scoring.lattice_null`), which
   prices the look-elsewhere of candidates, refinement and decays exactly, where Bonferroni
   (x 18 before) overpaid for tries that mostly land on the same period.

Also returned: the period of the best candidate and the share of the intervals within a
quarter period of its lattice (one half for Poisson gaps), which stands for the timing part
of sampled pairs' score.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import F64

LATTICE_MIN_PERIOD_S = 10.0
LATTICE_MIN_INTERVALS = 6
CANDIDATE_INTERVALS = 3
CANDIDATE_BEATS = 3
REFINE_MAX_BEATS = 64
# exp(-decay) per beat: the resultant one beat of uniform jitter +/- j keeps is about
# exp(-(2 pi j)^2 / 6), so 0.02, 0.07, 0.2 stand for j = 5 %, 10 %, 18 %.
DECAYS = (0.02, 0.07, 0.2)
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
def weighted_resultant(ds: F64, skip: int, period_s: float, decay: float) -> float:
    """Z = |sum w exp(2 pi i d / P)|^2 / sum w^2 over ``ds`` but index ``skip``, w = exp(-decay
    k), k = max(1, round(d / P)): about an exponential(1) variable for uniform phases."""
    c = 0.0
    s = 0.0
    w2 = 0.0
    for j in range(ds.shape[0]):
        if j == skip:
            continue
        k = max(1.0, np.floor(ds[j] / period_s + 0.5))
        w = np.exp(-decay * k)
        phase = 2.0 * np.pi * ds[j] / period_s
        c += w * np.cos(phase)
        s += w * np.sin(phase)
        w2 += w * w
    return float((c * c + s * s) / w2) if w2 > 0.0 else 0.0


@njit(cache=True, nogil=True)
def on_lattice_share(ds: F64, skip: int, period_s: float) -> float:
    """Share of ``ds`` (but index ``skip``) within `ON_LATTICE` periods of a lattice point."""
    on = 0
    for j in range(ds.shape[0]):
        if j == skip:
            continue
        k = np.floor(ds[j] / period_s + 0.5)
        if k >= 1.0 and abs(ds[j] - k * period_s) <= ON_LATTICE * period_s:
            on += 1
    return float(on / (ds.shape[0] - 1))


@njit(cache=True, nogil=True)
def lattice_statistic(ds: F64, min_period_s: float) -> tuple[float, float, float]:
    """(statistic, period_s, share on the lattice) of the sorted intervals ``ds``: statistic =
    -max Z over the candidates and `DECAYS` (lower = more regular; its p-value from
    `lattice_null`); (inf, 0, 0) when there are too few or no candidate period qualifies."""
    m = ds.shape[0]
    best_z, best_period, best_skip = -1.0, 0.0, -1
    if m < LATTICE_MIN_INTERVALS:
        return np.inf, 0.0, 0.0
    floor_s = max(min_period_s, LATTICE_MIN_PERIOD_S)
    for i in range(min(CANDIDATE_INTERVALS, m)):
        for beats in range(1, CANDIDATE_BEATS + 1):
            p0 = ds[i] / beats
            if p0 < floor_s:
                continue
            period = refine_period(ds, p0)
            for decay in DECAYS:
                z = weighted_resultant(ds, i, period, decay)
                if z > best_z:
                    best_z, best_period, best_skip = z, period, i
    if best_skip < 0:
        return np.inf, 0.0, 0.0
    return -best_z, best_period, on_lattice_share(ds, best_skip, best_period)
