"""Score one pair's window of connection start times and sizes.

The result is a flat float64 vector (numba-friendly) whose slots are named in `Stat`; the
parameters come in as a float64 vector built by `scoring_params` from the config, and the
Poisson null tables come in as an argument (built once per process, `NullTable` order: the fit
statistic's from `significance`, the raw intervals' CV and floor from `interval_significance`).
Period, jitter and missed beats come from `periodicity`, the confidence from the three tests,
the size regularity from `sizes`.

    timing     = (1 - clip((spread - spread_free) / (spread_tolerance - spread_free)))
                 * (1 - outlier share)
    count      = min(1, connections / min(12, 0.75 * history_events))
    base       = weighted mean of timing, size regularity, count (config weights)
    evidence   = log10(1 / p), p = 1 - confidence = min(1, 3 min(p_fit, p_cv, p_floor)),
                 or min(1, 4 min(..., p_sparse)) for 4 to sparse_max_connections connections
    gate       = clip((evidence - log10(1 / (1 - min_confidence)))
                      / (log10(1 / p_full) - log10(1 / (1 - min_confidence))))
                 p_full = max(1 - full_confidence, smallest p the null table resolves)
    missed     = clip((missed ratio - missed_allowance) / (1 - missed_allowance))
    bulk       = clip(1 - (rate - bulk_rate) / (3 bulk_rate)), rate = median bytes / median
                 interval (1 when bulk_rate_bytes_s is 0)
    score      = gate * base * (1 - missed) * bulk

spread = (b - a) / mean single-beat interval: 0 for a perfect beacon, 0.67 at 50 % subtractive
jitter, 1.0 at +/-50 % symmetric jitter, 1.2 at 75 % subtractive, about 2 for Poisson arrivals.
Spread up to `spread_free` costs nothing: how wide a jitter an operator picks says nothing about
whether the pair is a beacon; the confidence gate (is this periodic at all?) decides that, and
the timing part only fades out towards Poisson-like spreads.

The gate is on the evidence, log10(1/p), not on 1 - p: the detector tests every busy pair
again and again (about 1e5 windows per 2,000 host-days, many of them bursts that are Poisson
inside), so a p-value of 1e-3 is no evidence at all at that scale, while 1e-5 is. A beacon
with little jitter reaches the full gate within a dozen check-ins; one with 75 % jitter needs
more of them, which the ring holds for all but the slowest.
Missed check-ins up to `missed_allowance` (30 %) cost nothing: C2 traffic loses beats when
laptops sleep. A median interval below `min_period_s` scores 0 (bursts are not beacons).

Bulk transfer: HLS/DASH playback fetches a segment every 2-10 s, each its own connection to
one CDN edge, for the minutes a video lasts: as periodic as any beacon (20 of 20 runs of the
hard case alerted). What sets it apart is the data: hundreds of kB to megabytes per
connection, 190-750 kB per second of the interval at 1.5-6 Mbit/s, where a check-in moves a
few kB per sleep. A pair whose median connection carries more than `bulk_rate_bytes_s`
(16 kB, 128 kbit/s) per second of its median interval is down-ranked linearly, to 0 at four
times that. Bytes are what the records hold: both directions where one record carries the
connection (Zeek, IPFIX biflows); with each direction exported apart, the connection's first
record (the reply is a duplicate), so a client's small requests can hide the download.
Under packet sampling `state.ingest` multiplies the sampled bytes by the rate first.
The price: a C2 that moves that much at every check-in (a 5 s sleep with 80 kB or more each
time) is down-ranked; that is streaming exfiltration rather than beaconing.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import F64
from beaconwatch.scoring.interval_significance import (
    N_RAW_TESTS,
    RawTest,
    combined_p_value,
    detector_interval_tables,
    raw_statistics,
)
from beaconwatch.scoring.kernels import mad_about, median_sorted
from beaconwatch.scoring.lattice import lattice_statistic
from beaconwatch.scoring.lattice_null import detector_lattice_tables
from beaconwatch.scoring.periodicity import N_FIT, Fit, fit_window
from beaconwatch.scoring.significance import (
    best_p_value,
    detector_null_tables,
    fit_statistic,
    p_value,
    phase_resultant,
)
from beaconwatch.scoring.sizes import size_regularity
from beaconwatch.scoring.sparse import SPARSE_MIN_CONNECTIONS, sparse_p_value

if TYPE_CHECKING:
    from beaconwatch.config import ScoringConfig


class Stat(IntEnum):
    """Slots of the stats vector returned by `score_window`."""

    SCORE = 0
    PERIOD_S = 1  # nominal sleep S (see periodicity: the jitter shape decides the anchor)
    MEAN_INTERVAL_S = 2  # mean single-beat interval
    JITTER_RATIO = 3
    JITTER_SHAPE = 4  # 0 none, 1 subtractive, 2 symmetric, 3 additive (periodicity.Shape)
    MISSED_RATIO = 5  # missed beats / expected beats
    OUTLIER_RATIO = 6  # intervals fitting no whole number of beats / intervals
    CONNECTIONS = 7
    SINGLE_INTERVALS = 8
    CONFIDENCE = 9  # 1 - p-value against Poisson arrivals
    PHASE_R = 10  # Rayleigh resultant length of the interval phases at the mean interval
    SIZE_REGULARITY = 11
    TIMING_SCORE = 12
    COUNT_SCORE = 13
    BYTES_MEDIAN = 14
    BYTES_MAD = 15
    REGIME_RECENT = 16  # 1 if the recent half of the window was fitted (sleep changed)
    SPREAD = 17  # (b - a) / mean single-beat interval
    LOW_S = 18  # a: low edge of the single-beat intervals
    HIGH_S = 19  # b: high edge
    MEDIAN_INTERVAL_S = 20  # raw median interval (the min_period_s check)
    INTERVAL_MAD_S = 21  # raw interval MAD
    INTERVAL_CV = 22  # raw interval coefficient of variation
    CONNECTIONS_PER_CHECK_IN = 23  # 2 when the pair opens two connections per cycle
    GAP_FLOOR = 24  # 10th-percentile interval / median interval (interval_significance)
    SIZE = 25


N_STATS = int(Stat.SIZE)  # plain int: numba cannot size an array with an IntEnum member


class NullTable(IntEnum):
    """The Poisson null tables `score_window` tests against, in the order of `null_tables`."""

    FIT = 0  # significance: the fit statistic
    CV = 1  # interval_significance: CV of the raw intervals
    FLOOR = 2  # interval_significance: negated gap floor
    LATTICE = 3  # lattice_null: the lattice statistic (packet-sampled pairs only)


N_TABLES = len(NullTable)


def null_tables(history_events: int) -> F64:
    """The detector's tables, shape (2, N_TABLES, rows, levels): [0] for every connection, [1]
    for every second one (`score_window_paired`); the shipped ones when current."""
    fit = detector_null_tables(history_events)
    raw = detector_interval_tables(history_events)
    lattice = detector_lattice_tables(history_events)
    tables = np.empty((fit.shape[0], N_TABLES, *fit.shape[1:]))
    tables[:, NullTable.FIT] = fit
    tables[:, NullTable.CV] = raw[:, RawTest.CV]
    tables[:, NullTable.FLOOR] = raw[:, RawTest.FLOOR]
    tables[:, NullTable.LATTICE] = lattice
    return tables


class Param(IntEnum):
    """Slots of the parameter vector built by `scoring_params`."""

    MIN_PERIOD_S = 0
    WEIGHT_TIMING = 1
    WEIGHT_SIZES = 2
    WEIGHT_COUNT = 3
    FULL_COUNT = 4  # connections at which the count part reaches 1
    SPREAD_TOLERANCE = 5
    MIN_CONFIDENCE = 6
    MISSED_ALLOWANCE = 7
    SPREAD_FREE = 8
    FULL_CONFIDENCE = 9
    BURST_GAP_S = 10  # longest gap inside a check-in made of bursts (`scoring.bursts`)
    SPARSE_MAX_CONNECTIONS = 11  # windows of 4 up to this many also get `scoring.sparse`
    SPARSE_SIZE_DENSITY = 12  # f of `sparse.size_p_value`, per unit of ln(bytes); 0: no sizes
    SPARSE_MIN_BYTES = 13  # connections below this carry no size evidence
    BULK_RATE_BYTES_S = 14  # bulk transfer: down-ranked above this rate (0: off)
    LATTICE = 15  # 1: the lattice test too (packet-sampled pairs, `scoring.lattice`)
    MIN_CHECK_INS = 16  # a window of fewer check-ins scores 0
    SIZE = 17


FULL_COUNT_EVENTS = 12.0  # connections at which the count part is full (if the ring holds them)
MIN_CHECK_INS = 4.0  # three intervals at least


def scoring_params(config: ScoringConfig, history_events: int) -> F64:
    params = np.zeros(Param.SIZE, dtype=np.float64)
    params[Param.MIN_PERIOD_S] = config.min_period_s
    params[Param.WEIGHT_TIMING] = config.weight_intervals
    params[Param.WEIGHT_SIZES] = config.weight_sizes
    params[Param.WEIGHT_COUNT] = config.weight_count
    params[Param.FULL_COUNT] = full_count(history_events)
    params[Param.SPREAD_TOLERANCE] = config.spread_tolerance
    params[Param.MIN_CONFIDENCE] = config.min_confidence
    params[Param.MISSED_ALLOWANCE] = config.missed_allowance
    params[Param.SPREAD_FREE] = config.spread_free
    params[Param.FULL_CONFIDENCE] = config.full_confidence
    params[Param.BURST_GAP_S] = config.burst_gap_s
    params[Param.SPARSE_MAX_CONNECTIONS] = config.sparse_max_connections
    params[Param.SPARSE_SIZE_DENSITY] = config.sparse_size_density
    params[Param.SPARSE_MIN_BYTES] = config.sparse_min_bytes
    params[Param.BULK_RATE_BYTES_S] = config.bulk_rate_bytes_s
    params[Param.MIN_CHECK_INS] = MIN_CHECK_INS
    return params


def sampled_scoring_params(params: F64) -> F64:
    """The parameters for pairs seen through packet-sampled export (sampling rate > 1).

    1:N sampling sees a short connection only with probability ~ packets / N, so check-ins go
    missing at random and the byte counts are those of the sampled packets: neither says
    anything about the pair. The missed-check-in penalty is waived and the size part dropped
    (its weight goes to timing and count). At 1:100 most beats are missing and the fold finds
    no period; the lattice test (`scoring.lattice`) reads the thinned lattice of whole
    multiples of one period instead: a fourth test of the confidence (p = min(1, 4 min(p_fit,
    p_cv, p_floor, p_lattice))), and where it is the strongest, its period stands for the fitted
    one and the timing part is full (its jitter, at most 18 % a beat, is within spread_free).
    """
    sampled = params.copy()
    sampled[Param.MISSED_ALLOWANCE] = 1.0
    sampled[Param.SPARSE_SIZE_DENSITY] = 0.0  # sampled byte counts say nothing
    sampled[Param.LATTICE] = 1.0
    if sampled[Param.WEIGHT_TIMING] + sampled[Param.WEIGHT_COUNT] > 0.0:
        sampled[Param.WEIGHT_SIZES] = 0.0
    # With no size part, timing alone carries the score, and a few check-ins of a web page's
    # fetches ~15 s apart look as regular as a beacon: the 1:10 sampled office alerted on 9
    # such browsing sessions (4-9 check-ins in a few minutes) in 2,000 host-days. Unsampled,
    # their irregular sizes hold them down. So a sampled window scores only once it holds as
    # many check-ins as fill the count part (12 by default).
    sampled[Param.MIN_CHECK_INS] = max(MIN_CHECK_INS, sampled[Param.FULL_COUNT])
    return sampled


def full_count(history_events: int) -> float:
    """Connections at which the count part of the score reaches 1."""
    return max(2.0, min(FULL_COUNT_EVENTS, 0.75 * history_events))


# Rows 0-3: fit_window (row 0 = intervals); rows 4-5: the two fit vectors; rows 6-8: the
# every-second-connection window and its stats (`score_window_paired`).
WORK_ROWS = 9
_ROW_HALF_TIMES, _ROW_HALF_SIZES, _ROW_HALF_STATS = 6, 7, 8


@njit(cache=True, nogil=True)
def new_workspace(history_events: int) -> F64:
    """Scratch rows `score_window` needs for windows of up to ``history_events`` connections."""
    return np.empty((WORK_ROWS, max(history_events, N_FIT, N_STATS)), dtype=np.float64)


@njit(cache=True, nogil=True)
def _clip01(x: float) -> float:
    return min(1.0, max(0.0, x))


@njit(cache=True, nogil=True)
def score_window(
    times_s: F64, sizes: F64, params: F64, out: F64, work: F64, tables: F64, lean: bool = False,
) -> None:  # fmt: skip
    """Fill ``out`` (length Stat.SIZE) for one window.

    ``times_s`` are connection start times in seconds, sorted ascending; ``sizes`` are the
    connections' byte counts in the same order. ``work`` comes from `new_workspace`,
    ``tables`` (shape (N_TABLES, rows, levels), `NullTable` order) from `null_tables`:
    confidence = 1 - min(1, 3 min(p_fit, p_cv, p_floor)).
    ``lean``: a window that scores 0 gets only the statistics the score depends on (the
    detector's case: most windows it scores show no periodicity at all, and only alerts
    report the rest); the score is the same either way.
    """
    out[:] = 0.0
    n = times_s.shape[0]
    out[Stat.CONNECTIONS] = n
    fit = work[4, :N_FIT]
    fit_window(times_s, work[:4], fit, work[5, :N_FIT])
    m = max(n - 1, 0)
    intervals = work[0, :m]  # left there by fit_window
    raw = work[3, :N_RAW_TESTS]  # fit_window is done with its scratch rows
    raw_statistics(intervals, work[1], raw)
    median = median_sorted(work[1, :m]) if m >= 1 else 0.0  # sorted by raw_statistics
    out[Stat.MEDIAN_INTERVAL_S] = median
    out[Stat.INTERVAL_CV] = raw[RawTest.CV]
    out[Stat.GAP_FLOOR] = -raw[RawTest.FLOOR]
    out[Stat.PERIOD_S] = fit[Fit.PERIOD_S]
    out[Stat.MEAN_INTERVAL_S] = fit[Fit.MEAN_INTERVAL_S]
    out[Stat.JITTER_RATIO] = fit[Fit.JITTER_RATIO]
    out[Stat.JITTER_SHAPE] = fit[Fit.JITTER_SHAPE]
    out[Stat.MISSED_RATIO] = fit[Fit.MISSED_RATIO]
    out[Stat.OUTLIER_RATIO] = fit[Fit.OUTLIER_RATIO]
    out[Stat.SINGLE_INTERVALS] = fit[Fit.SINGLES]
    out[Stat.REGIME_RECENT] = fit[Fit.RECENT]
    out[Stat.SPREAD] = fit[Fit.SPREAD]
    out[Stat.LOW_S] = fit[Fit.LOW_S]
    out[Stat.HIGH_S] = fit[Fit.HIGH_S]
    p_fit = p_value(tables[NullTable.FIT], m, fit_statistic(fit))
    p_cv = p_value(tables[NullTable.CV], m, raw[RawTest.CV]) if m >= 1 else 1.0
    p_floor = p_value(tables[NullTable.FLOOR], m, raw[RawTest.FLOOR]) if m >= 1 else 1.0
    best_p = combined_p_value(
        best_p_value(tables[NullTable.FIT]),
        best_p_value(tables[NullTable.CV]),
        best_p_value(tables[NullTable.FLOOR]),
    )
    # Up to two more tests, each a Bonferroni term: the exact spacing of a few check-ins
    # (`scoring.sparse`; its closed form resolves any p, so full weight is at 1 -
    # full_confidence) and the lattice of a packet-sampled pair (`scoring.lattice`).
    tests, p_min = 3.0, min(p_fit, p_cv, p_floor)
    if SPARSE_MIN_CONNECTIONS <= n <= params[Param.SPARSE_MAX_CONNECTIONS]:
        p_sparse = sparse_p_value(
            intervals, sizes, params[Param.SPARSE_SIZE_DENSITY], params[Param.SPARSE_MIN_BYTES]
        )
        tests, p_min, best_p = tests + 1.0, min(p_min, p_sparse), 0.0
    p_lattice, lattice_period = 1.0, 0.0
    if params[Param.LATTICE] > 0.0 and m >= 1:  # work[1] holds the intervals sorted
        statistic, lattice_period = lattice_statistic(work[1, :m], params[Param.MIN_PERIOD_S])
        p_lattice = p_value(tables[NullTable.LATTICE], m, statistic)
        tests, p_min = tests + 1.0, min(p_min, p_lattice)
    p_all = combined_p_value(p_fit, p_cv, p_floor) if tests == 3.0 else min(1.0, tests * p_min)
    on_lattice = p_lattice < min(p_fit, p_cv, p_floor)
    if on_lattice:  # the period and missed beats the lattice says, not the fold's
        span = times_s[n - 1] - times_s[0]
        out[Stat.PERIOD_S] = lattice_period
        out[Stat.MEAN_INTERVAL_S] = lattice_period
        out[Stat.LOW_S] = lattice_period
        out[Stat.HIGH_S] = lattice_period
        out[Stat.JITTER_RATIO] = 0.0
        out[Stat.JITTER_SHAPE] = 0.0
        out[Stat.MISSED_RATIO] = _clip01(1.0 - m * lattice_period / span) if span > 0 else 0.0
    confidence = 1.0 - p_all
    out[Stat.CONFIDENCE] = confidence
    scored = n >= params[Param.MIN_CHECK_INS] and median >= params[Param.MIN_PERIOD_S]
    scored = scored and median > 0.0
    gate = 0.0
    if scored:
        gate = evidence_gate(
            1.0 - confidence, params[Param.MIN_CONFIDENCE], params[Param.FULL_CONFIDENCE], best_p
        )
    if lean and gate <= 0.0:
        return

    if m >= 1:
        out[Stat.INTERVAL_MAD_S] = mad_about(intervals, median, work[2])
    recent = fit[Fit.RECENT] == 1.0
    used = intervals[m - int(fit[Fit.INTERVALS]) :] if recent else intervals
    out[Stat.PHASE_R] = phase_resultant(used, fit[Fit.MEAN_INTERVAL_S])
    # The interval rows are done with, so the sizes may reuse them.
    bytes_median, bytes_mad, regularity = size_regularity(sizes, work[1:3])
    out[Stat.BYTES_MEDIAN] = bytes_median
    out[Stat.BYTES_MAD] = bytes_mad
    out[Stat.SIZE_REGULARITY] = regularity

    if not scored:
        return
    free = params[Param.SPREAD_FREE]
    fade = (fit[Fit.SPREAD] - free) / (params[Param.SPREAD_TOLERANCE] - free)
    timing = (1.0 - _clip01(fade)) * (1.0 - fit[Fit.OUTLIER_RATIO])
    if on_lattice:
        # The timing part prices the beacon's jitter (full up to spread_free, about +/-45 %
        # symmetric); the lattice's per-beat jitter is at most 18 % (its largest variance).
        # The share of intervals within a quarter period that stood here before measured
        # the thinning instead (9 beats of jitter add up), and cost true beacons 4-22 %.
        timing = 1.0
    count = min(1.0, n / params[Param.FULL_COUNT])
    out[Stat.TIMING_SCORE] = timing
    out[Stat.COUNT_SCORE] = count
    w_t = params[Param.WEIGHT_TIMING]
    w_s = params[Param.WEIGHT_SIZES]
    w_c = params[Param.WEIGHT_COUNT]
    base = (w_t * timing + w_s * regularity + w_c * count) / (w_t + w_s + w_c)
    allowance = params[Param.MISSED_ALLOWANCE]
    missed = 0.0
    if allowance < 1.0:
        missed = _clip01((fit[Fit.MISSED_RATIO] - allowance) / (1.0 - allowance))
    bulk = bulk_factor(bytes_median / median, params[Param.BULK_RATE_BYTES_S])
    out[Stat.SCORE] = gate * base * (1.0 - missed) * bulk


@njit(cache=True, nogil=True)
def bulk_factor(rate_bytes_s: float, bulk_rate_bytes_s: float) -> float:
    """1 up to ``bulk_rate_bytes_s`` (0: always 1), then linearly down to 0 at 4 times it."""
    if bulk_rate_bytes_s <= 0.0 or rate_bytes_s <= bulk_rate_bytes_s:
        return 1.0
    return _clip01(1.0 - (rate_bytes_s - bulk_rate_bytes_s) / (3.0 * bulk_rate_bytes_s))


@njit(cache=True, nogil=True)
def evidence_gate(p: float, min_confidence: float, full_confidence: float, best_p: float) -> float:
    """0 at p >= 1 - min_confidence, 1 at p <= p_full, linear in log10(1/p) in between.

    p_full = max(1 - full_confidence, best_p): full weight cannot need a p-value smaller than
    the null table resolves.
    """
    p_start = 1.0 - min_confidence
    p_full = max(1.0 - full_confidence, best_p)
    if p_full >= p_start:
        return 1.0 if p <= p_full else 0.0
    evidence = -np.log10(max(p, 1e-300))
    low = -np.log10(p_start)
    high = -np.log10(p_full)
    return _clip01((evidence - low) / (high - low))


# Some implants open two connections per check-in (NjRAT: a retry 9 s after each attempt, then
# 14 s to the next), so intervals alternate and fit no single period. When the plain fit leaves
# many outliers, every second connection is scored too, against its own null (gamma(2) gaps of
# Poisson arrivals, `significance.null_table(..., events_per_cycle=2)`), and the better result
# is kept. Clean beacons never pay for the second fit.
PAIRED_MIN_CONNECTIONS = 12
PAIRED_OUTLIER_TRIGGER = 0.25


@njit(cache=True, nogil=True)
def score_window_paired(
    times_s: F64, sizes: F64, params: F64, out: F64, work: F64, tables: F64,
    paired_tables: F64, lean: bool = False,
) -> None:  # fmt: skip
    """`score_window`, or the score of every second connection when that is clearly better.
    ``tables`` / ``paired_tables``: `null_tables`' [0] and [1]."""
    score_window(times_s, sizes, params, out, work, tables, lean)
    out[Stat.CONNECTIONS_PER_CHECK_IN] = 1.0
    n = times_s.shape[0]
    if n < PAIRED_MIN_CONNECTIONS or out[Stat.OUTLIER_RATIO] <= PAIRED_OUTLIER_TRIGGER:
        return
    half = (n + 1) // 2
    half_times = work[_ROW_HALF_TIMES, :half]
    half_sizes = work[_ROW_HALF_SIZES, :half]
    for i in range(half):
        half_times[i] = times_s[2 * i]
        half_sizes[i] = sizes[2 * i]
    alt = work[_ROW_HALF_STATS, : out.shape[0]]
    score_window(half_times, half_sizes, params, alt, work, paired_tables, lean)
    if alt[Stat.SCORE] > out[Stat.SCORE]:
        out[:] = alt
        out[Stat.CONNECTIONS] = n
        out[Stat.CONNECTIONS_PER_CHECK_IN] = 2.0
