"""RITA v5's beacon score, re-implemented from its published formulas (facts only, no code).

Source: repository activecm/rita (v5, Go), read at commit 0b6db7afdaf3:

- ``analysis/beacons.go``: ``analyzeBeacon`` (the four sub-scores and their combination),
  ``getBeaconScore`` (weighted sum, rounded to 3 decimals), ``getTimestampScore`` (intervals of
  the sorted whole-second timestamps; zero intervals dropped; needs >= 4 timestamps and >= 3
  non-zero intervals), ``getDataSizeScore``, ``calculateStatisticalScore`` ((skew score + MAD
  score) / 2, rounded), ``calculateBowleySkewness`` (skewness 0 unless Q3 - Q1 >= 10 and the
  median differs from both quartiles; score 1 - |skew|), ``calculateMedianAbsoluteDeviation``
  (score (median - MAD) / median when median >= 1, else a default: 1 for intervals, 0 for
  sizes; negative -> 0), ``getHistogramScore`` (24 equal bins over the dataset's beacon time
  range; max of the CV score and the bimodal-fit score), ``computeHistogramBins``,
  ``createHistogram``, ``getFrequencyCounts`` (bars bucketed by ceil(max bar x 0.05); longest
  run of non-empty bins, wrapping around), ``calculateCoefficientOfVariationScore``
  (1 - population CV, 0 if CV > 1), ``calculateBimodalFitScore`` (needs >= 11 non-empty bins;
  (two largest bucket counts) / (non-empty bins - 1)), ``getDurationScore`` (needs >= 6
  non-empty bins; max of coverage = (last - first connection) / dataset range and
  consistency = longest run / 12, each rounded up to 3 decimals and capped at 1).
- ``default_config.hjson`` (scoring.beacon): unique_connection_threshold 4, all four weights
  0.25, duration_min_hours_seen 6, duration_consistency_ideal_hours_seen 12,
  histogram_mode_sensitivity 0.05, histogram_bimodal_outlier_removal 1,
  histogram_bimodal_min_hours_seen 11.
- ``analysis/analysis.go`` ``runAnalysis``: a pair is scored when it has >= 4 unique
  timestamps and fewer than 86,400 connections (more is a "strobe").
- ``database`` ``GetBeaconMinMaxTimestamps``: the beacon time range is
  [max(first ts, last ts - 24 h), last ts] of the whole import.
- ``analysis/uconns.sql`` / ``spagooper.go``: IP beacons are per (src, dst) host pair, all
  ports together, with per-connection timestamps (whole seconds) and the originator's IP
  bytes; internal -> internal and external -> internal connections are filtered at import.
- Quartiles follow montanaflynn/stats ``Quartile``: medians of the lower and upper halves,
  the middle element excluded when the count is odd.

Evaluation tooling only (pure NumPy), never imported by the service.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from beaconwatch.domain.dtypes import F64

UNIQUE_CONNECTION_THRESHOLD = 4
STROBE_CONNECTIONS = 86_400
HIST_BINS = 24
MODE_SENSITIVITY = 0.05
BIMODAL_OUTLIER_REMOVAL = 1
BIMODAL_MIN_HOURS = 11
DURATION_MIN_HOURS = 6
DURATION_IDEAL_HOURS = 12
WEIGHTS = (0.25, 0.25, 0.25, 0.25)  # timestamp, data size, duration, histogram
BEACON_RANGE_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class RitaScore:
    score: float
    timestamp: float
    data_size: float
    histogram: float
    duration: float


def _round3(x: float) -> float:
    return math.floor(x * 1000 + 0.5) / 1000  # Go's math.Round: half away from zero (x >= 0)


def quartiles(sorted_x: F64) -> tuple[float, float, float]:
    n = sorted_x.shape[0]
    c1, c2 = (n // 2, n // 2) if n % 2 == 0 else ((n - 1) // 2, (n - 1) // 2 + 1)
    return (
        float(np.median(sorted_x[:c1])),
        float(np.median(sorted_x)),
        float(np.median(sorted_x[c2:])),
    )


def statistical_score(values: F64, default_mad_score: float) -> float:
    """(Bowley skewness score + MAD score) / 2 of ``values`` (>= 3 of them)."""
    x = np.sort(values)
    q1, q2, q3 = quartiles(x)
    skew = 0.0
    if q3 - q1 >= 10 and q2 != q1 and q2 != q3:
        skew = (q1 + q3 - 2 * q2) / (q3 - q1)
    skew_score = 1.0 - abs(skew)
    median = float(np.median(x))
    mad = float(np.median(np.abs(x - median)))
    mad_score = default_mad_score
    if median >= 1:
        mad_score = (median - mad) / median
    if mad_score < 0 or math.isnan(mad_score):
        mad_score = 0.0
    return _round3((skew_score + mad_score) / 2.0)


def timestamp_score(ts_s: npt.NDArray[np.int64]) -> float | None:
    """None where RITA errors out (fewer than 4 timestamps or 3 non-zero intervals)."""
    if ts_s.shape[0] < 4:
        return None
    deltas = np.diff(np.sort(ts_s)).astype(np.float64)
    nonzero = deltas[deltas > 0]
    if nonzero.shape[0] < 3:
        return None
    return statistical_score(nonzero, 1.0)


def data_size_score(sizes: F64) -> float | None:
    if sizes.shape[0] < 3:
        return None
    return statistical_score(sizes.astype(np.float64), 0.0)


def histogram(
    ts_s: npt.NDArray[np.int64], range_min_s: int, range_max_s: int
) -> npt.NDArray[np.int64]:
    """Connections per bin of 24 equal bins over the range; the last bin is closed."""
    edges = range_min_s + np.arange(HIST_BINS + 1) * ((range_max_s - range_min_s) / HIST_BINS)
    edges[-1] = range_max_s
    idx = np.searchsorted(edges[1:-1], ts_s, side="right")
    return np.bincount(idx, minlength=HIST_BINS).astype(np.int64)


def frequency_counts(bars: npt.NDArray[np.int64]) -> tuple[dict[int, int], int, int]:
    """(bucketed bar heights -> count, non-empty bins, longest run of non-empty bins)."""
    total_bars = int(np.count_nonzero(bars))
    bin_size = math.ceil(int(bars.max()) * MODE_SENSITIVITY)
    freq: dict[int, int] = {}
    for bar in bars[bars > 0].tolist():
        bucket = int(math.floor(bar / bin_size) * bin_size)
        freq[bucket] = freq.get(bucket, 0) + 1
    longest = run = 0
    for bar in np.concatenate((bars, bars)).tolist():  # runs may wrap around the end
        if bar > 0:
            run += 1
        else:
            longest, run = max(longest, run), 0
    longest = min(max(longest, run), bars.shape[0])
    return freq, total_bars, longest


def cv_score(bars: npt.NDArray[np.int64]) -> float:
    mean = float(bars.mean())
    cv = float(np.sqrt(np.mean((bars - mean) ** 2))) / abs(mean)
    return 0.0 if cv > 1.0 else min(1.0, _round3(1.0 - cv))


def bimodal_fit_score(freq: dict[int, int], total_bars: int) -> float:
    if total_bars < BIMODAL_MIN_HOURS:
        return 0.0
    top = sorted(freq.values(), reverse=True)[:2]
    fit = sum(top) / max(total_bars - BIMODAL_OUTLIER_REMOVAL, 1)
    return min(1.0, _round3(fit))


def _ceil3(x: float) -> float:
    return math.ceil(x * 1000) / 1000


def duration_score(
    range_min_s: int, range_max_s: int, first_s: int, last_s: int, total_bars: int, longest: int
) -> float:
    if total_bars < DURATION_MIN_HOURS or last_s <= first_s:
        return 0.0
    coverage = min(1.0, _ceil3((last_s - first_s) / (range_max_s - range_min_s)))
    consistency = min(1.0, _ceil3(longest / DURATION_IDEAL_HOURS))
    return max(coverage, consistency)


def beacon_score(
    ts_s: npt.NDArray[np.int64], sizes: F64, range_min_s: int, range_max_s: int
) -> RitaScore | None:
    """RITA's score of one host pair, or None where RITA would not score it.

    ``ts_s``: connection start times (whole seconds) inside [range_min_s, range_max_s];
    ``sizes``: the originator's bytes of each connection.
    """
    ts_s = np.sort(ts_s.astype(np.int64))
    if (
        np.unique(ts_s).shape[0] < UNIQUE_CONNECTION_THRESHOLD
        or ts_s.shape[0] >= STROBE_CONNECTIONS
    ):
        return None
    if range_max_s <= range_min_s:
        return None
    ts = timestamp_score(ts_s)
    ds = data_size_score(sizes)
    if ts is None or ds is None:
        return None
    bars = histogram(ts_s, range_min_s, range_max_s)
    freq, total_bars, longest = frequency_counts(bars)
    hist = max(cv_score(bars), bimodal_fit_score(freq, total_bars))
    dur = duration_score(range_min_s, range_max_s, int(ts_s[0]), int(ts_s[-1]), total_bars, longest)
    w_ts, w_ds, w_dur, w_hist = WEIGHTS
    score = _round3(ts * w_ts + ds * w_ds + dur * w_dur + hist * w_hist)
    return RitaScore(score, ts, ds, hist, dur)
