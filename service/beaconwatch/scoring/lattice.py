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
   P = sum d_i / sum k_i over the intervals of 1..K beats, K doubling from 2 to 16 (the jitter of
   a k-beat interval grows as sqrt(k), so sum d / sum k weighs them right); one single-beat
   interval alone is off by its jitter, which k = 9 beats multiply.
3. The log-likelihood ratio of the phases: an interval of k beats is k P plus the sum of k
   jitters, so its phase 2 pi d / P is about wrapped-normal with a variance that grows like
   k (the jitter of k independent sleeps adds up like a random walk), while Poisson gaps
   much longer than P give uniform phases. Over the intervals but the one the candidate came
   from: L = sum log((1 - e) 2 pi f(phase; k v) + e), f the wrapped normal density, v the
   phase variance of one beat, k = max(1, round(d / P)), e = `OFF_LATTICE_SHARE` (a share
   of intervals off the lattice, e.g. a sleep stretched by tasking, costs a bounded log e
   each instead of an arbitrarily large one). Each v of `PHASE_VARIANCES` (about 2 %, 5 %,
   10 % and 18 % uniform jitter a beat) is tried and the largest L kept.
   Why a likelihood and not a resultant: a weighted Rayleigh resultant (the test before,
   weights exp(-v k / 2)) reads only the first harmonic of the phases. That is all a long
   interval has (k = 9 beats at 10 % jitter keep a resultant of 0.55), but the short ones
   are sharp peaks (one beat: phase sd 0.36 rad), whose higher harmonics the resultant
   throws away: per interval of one beat the likelihood ratio gains 1.44 nats against the
   Poisson null where the resultant's noncentrality gains 0.88. At 1:100 sampling about a
   third of the exported intervals are 1-3 beats: on the sampled 300 s case the p-values
   fell about 5-fold (median over 20 runs; simulated null both).
4. The statistic is -max L over the candidates and variances (lower = more regular); its
   p-value comes from a null table of simulated Poisson windows (`scoring.lattice_null`),
   which prices the look-elsewhere of candidates, refinement and variances exactly, where
   Bonferroni (x 18 before) overpaid for tries that mostly land on the same period.

Also returned: the period of the best candidate (the alert's period where the lattice is the
strongest evidence).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import F64

LATTICE_MIN_PERIOD_S = 10.0
LATTICE_MIN_INTERVALS = 6
CANDIDATE_INTERVALS = 3
CANDIDATE_BEATS = 3
# Refined on intervals of up to 16 beats: longer ones (phase sd >= 0.23 cycles a beat at 10 %
# jitter, times sqrt(k)) add little to a beacon's period but let the fit bend a Poisson
# window's period to its phases. From 64 to 16 (with e 0.02): the sampled 300 s case's
# marginal runs went from p 7e-5..9e-5 to 1e-5 (Poisson null simulated for each, 200,000).
REFINE_MAX_BEATS = 16
# Phase variance (rad^2) of one beat: uniform jitter +/- j of the sleep has (2 pi j)^2 / 3, so
# 0.005, 0.04, 0.14, 0.4 stand for j = 2 %, 5 %, 10 %, 18 %. The 2 % one is for jitter-free
# implants (Cobalt Strike's default): at 5 % the likelihood caps what an exact lattice earns,
# and 900 s beacons with 8-9 exported check-ins (the office at 1:100) fell from p 1e-5 to 1e-3.
PHASE_VARIANCES = (0.005, 0.04, 0.14, 0.4)
# The uniform part of the phases' mixture: the share of intervals expected off the lattice (a
# sleep stretched by tasking). Each interval on the lattice pays log(1 - e), each one off it
# log e: at 0.1 a window of 26 clean intervals gave up 2.7 nats, at 0.02 0.5, for an off one
# costing 3.9 nats instead of 2.3. Alone it took the sampled 300 s case's marginal runs' p
# ~1.5-fold lower (a Poisson null simulated for each e, 200,000 windows); 0.01 gained no more.
OFF_LATTICE_SHARE = 0.02
# Above this variance (rad^2, sd 3 rad) a wrapped normal is uniform to 1 %: the term is 0.
FLAT_VARIANCE = 9.0
WRAPS = 1  # the wrapped normal summed over 2 pi w, |w| <= WRAPS (exact to 0.3 % below FLAT)
TWO_PI = 2.0 * np.pi


@njit(cache=True, nogil=True)
def refine_period(ds: F64, period_s: float) -> float:
    """Least-squares period of the lattice the intervals ``ds`` fall on, from ``period_s``:
    P = sum d / sum k over the intervals of 1..K beats (k = round(d / P)), K = 2, 4, 8, 16."""
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
def phase_log_likelihood(ds: F64, skip: int, period_s: float, variance: float) -> float:
    """L = sum log((1 - e) 2 pi f(phase; k variance) + e) over ``ds`` but index ``skip``: the
    log-likelihood ratio of the phases d / P (k = max(1, round(d / P)) beats each, f the
    wrapped normal density) against uniform phases, e = `OFF_LATTICE_SHARE`."""
    total = 0.0
    e = OFF_LATTICE_SHARE
    for j in range(ds.shape[0]):
        if j == skip:
            continue
        x = ds[j] / period_s
        k = max(1.0, np.floor(x + 0.5))
        v = k * variance
        if v > FLAT_VARIANCE:
            continue
        phase = TWO_PI * (x - np.floor(x + 0.5))  # in [-pi, pi)
        f = 0.0
        for w in range(-WRAPS, WRAPS + 1):
            a = phase + TWO_PI * w
            f += np.exp(-a * a / (2.0 * v))
        total += np.log((1.0 - e) * f * np.sqrt(TWO_PI / v) + e)
    return float(total)


@njit(cache=True, nogil=True)
def lattice_statistic(ds: F64, min_period_s: float) -> tuple[float, float]:
    """(statistic, period_s) of the sorted intervals ``ds``: statistic = -max L over the
    candidates and `PHASE_VARIANCES` (lower = more regular; its p-value from `lattice_null`);
    (inf, 0) when there are too few or no candidate period qualifies."""
    m = ds.shape[0]
    best_z, best_period, best_skip = -np.inf, 0.0, -1
    if m < LATTICE_MIN_INTERVALS:
        return np.inf, 0.0
    floor_s = max(min_period_s, LATTICE_MIN_PERIOD_S)
    for i in range(min(CANDIDATE_INTERVALS, m)):
        for beats in range(1, CANDIDATE_BEATS + 1):
            p0 = ds[i] / beats
            if p0 < floor_s:
                continue
            period = refine_period(ds, p0)
            for variance in PHASE_VARIANCES:
                z = phase_log_likelihood(ds, i, period, variance)
                if z > best_z:
                    best_z, best_period, best_skip = z, period, i
    if best_skip < 0:
        return np.inf, 0.0
    return -best_z, best_period
