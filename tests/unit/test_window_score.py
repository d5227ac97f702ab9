"""score_window: statistics vs the NumPy twin, score formula, behaviour on beacons vs browsing."""

from __future__ import annotations

import numpy as np
import pytest

from beaconwatch.config import ScoringConfig
from beaconwatch.scoring import sizes as size_kernels
from beaconwatch.scoring.window_score import (
    N_STATS,
    Stat,
    bulk_factor,
    new_workspace,
    null_tables,
    score_window,
    score_window_paired,
    scoring_params,
)
from tests.unit import naive, naive_scoring
from tests.unit.test_periodicity import beacon, random_windows

RNG = np.random.default_rng(20261126)
HISTORY = 32


def tables(history: int = HISTORY) -> np.ndarray:
    """The detector's null tables for every connection (`NullTable` order)."""
    return null_tables(history)[0]


def score(times_s: np.ndarray, sizes: np.ndarray, history: int = HISTORY) -> np.ndarray:
    out = np.empty(N_STATS)
    params = scoring_params(ScoringConfig(), history)
    work = new_workspace(max(history, len(times_s)))
    score_window(np.sort(times_s), sizes, params, out, work, tables(history))
    return out


def padded(n: int, base_b: int = 300) -> np.ndarray:
    return (base_b + RNG.integers(50, 161, n)).astype(np.float64)


def test_size_regularity_matches_reference() -> None:
    for _ in range(300):
        kind = RNG.integers(0, 4)
        x = [RNG.lognormal(7, 2, 20), padded(20), np.zeros(5), np.full(9, 512.0)][kind]
        got = size_kernels.size_regularity(x, np.empty((2, len(x))))
        assert got == pytest.approx(naive_scoring.size_regularity(x))
    assert size_kernels.size_regularity(padded(32), np.empty((2, 32)))[2] > 0.85


def test_window_matches_reference() -> None:
    null = tables()
    c = ScoringConfig()
    for times in random_windows(150):
        times = times[:HISTORY]
        sizes = padded(len(times)) if RNG.random() < 0.5 else RNG.lognormal(7, 2, len(times))
        out = score(times, sizes)
        st = naive.window_stats(times, sizes, null)
        for name, value in st.items():
            assert out[Stat[name.upper()]] == pytest.approx(value, rel=1e-9, abs=1e-9), name
        want = naive.window_score(
            times, sizes, tables=null, min_period_s=c.min_period_s,
            weights=(c.weight_intervals, c.weight_sizes, c.weight_count),
            full_count=max(2.0, min(12.0, 0.75 * HISTORY)),
        )  # fmt: skip
        assert out[Stat.SCORE] == pytest.approx(want, abs=1e-12)
        assert 0.0 <= out[Stat.SCORE] <= 1.0


@pytest.mark.parametrize("shape", ["subtractive", "symmetric", "additive"])
def test_jittered_beacons_score_high(shape: str) -> None:
    rng = np.random.default_rng(len(shape))
    scores = [score(beacon(rng, shape, 300.0, 0.3, 32, 0.1), padded(32))[Stat.SCORE]
              for _ in range(30)]  # fmt: skip
    assert np.median(scores) >= 0.75


def test_wide_subtractive_jitter_alerts_on_a_full_ring_but_not_on_a_dozen_check_ins() -> None:
    # 75 % subtractive jitter: 32 intervals are enough evidence (the interval CV is ~0.35
    # against Poisson's 1), a dozen are not yet at the default gate (p = 1e-4 for full weight).
    rng = np.random.default_rng(9)
    full = [score(beacon(rng, "subtractive", 60.0, 0.75, 32), padded(32))[Stat.SCORE]
            for _ in range(30)]  # fmt: skip
    dozen = [score(beacon(rng, "subtractive", 60.0, 0.75, 12), padded(12))[Stat.SCORE]
             for _ in range(30)]  # fmt: skip
    assert np.median(full) >= 0.8
    assert np.median(dozen) < np.median(full)


def test_poisson_and_bursty_browsing_score_low() -> None:
    rng = np.random.default_rng(10)
    poisson = [score(np.round(np.cumsum(rng.exponential(60, 32)), 3),
                     rng.lognormal(8, 2, 32).round())[Stat.SCORE] for _ in range(200)]  # fmt: skip
    assert np.median(poisson) < 0.1
    assert np.quantile(poisson, 0.95) < 0.5


def test_bulk_transfer_is_down_ranked_above_its_rate() -> None:
    assert bulk_factor(16_384.0, 16_384.0) == 1.0 and bulk_factor(1e9, 0.0) == 1.0
    assert bulk_factor(2 * 16_384.0, 16_384.0) == pytest.approx(2 / 3)
    assert bulk_factor(4 * 16_384.0, 16_384.0) == 0.0
    rng = np.random.default_rng(11)
    # HLS segments every 4 s +/- 5 %, 3 Mbit/s +/- 30 %: periodic, but 375 kB a second.
    times = np.cumsum(4.0 * rng.uniform(0.95, 1.05, 32))
    segments = 3e6 / 8 * 4.0 * rng.uniform(0.7, 1.3, 32)
    assert score(times, segments)[Stat.SCORE] == 0.0
    params = scoring_params(ScoringConfig(bulk_rate_bytes_s=0.0), HISTORY)
    out = np.empty(N_STATS)
    score_window(times, segments, params, out, new_workspace(HISTORY), tables())
    assert out[Stat.SCORE] >= 0.8  # what the rule holds down
    # A beacon's check-ins of a few kB every 5 s (under 1 kB a second): untouched.
    beacon_out = score(times * 1.25, np.full(32, 4_000.0))
    assert beacon_out[Stat.SCORE] >= 0.8


def test_perfect_beacon_scores_high_even_with_six_events() -> None:
    out = score(np.arange(6) * 14_400.0, np.full(6, 512.0))
    assert out[Stat.CONFIDENCE] > 0.99
    assert out[Stat.SCORE] > 0.8
    assert out[Stat.PERIOD_S] == 14_400.0
    full = score(np.arange(32) * 300.0, np.full(32, 512.0))
    assert full[Stat.SCORE] == pytest.approx(1.0, abs=1e-3)


def test_sub_second_bursts_never_score() -> None:
    out = score(np.arange(32) * 0.2, np.full(32, 512.0))
    assert out[Stat.SCORE] == 0.0


def test_many_missed_beats_cost_score() -> None:
    few = score(np.arange(32) * 60.0, np.full(32, 500.0))[Stat.SCORE]
    # Intervals of 1, 2 and 3 beats in turn: 3 beats missed in 6.
    many = score(np.cumsum(np.tile([60.0, 120.0, 180.0], 11)[:32]), np.full(32, 500.0))
    assert many[Stat.PERIOD_S] == 60.0
    assert many[Stat.MISSED_RATIO] == pytest.approx(0.5, abs=0.01)
    assert many[Stat.SCORE] < 0.75 * few


def test_lean_scoring_gives_the_same_score_and_what_an_alert_reports() -> None:
    """The detector scores lean: a window scored 0 skips the statistics only alerts report.
    The score is the same; a window scored above 0 gets every statistic."""
    params = scoring_params(ScoringConfig(), HISTORY)
    null = null_tables(HISTORY)
    kept = [Stat.SCORE, Stat.PERIOD_S, Stat.MEAN_INTERVAL_S, Stat.JITTER_RATIO,
            Stat.MISSED_RATIO, Stat.OUTLIER_RATIO, Stat.CONFIDENCE, Stat.SPREAD,
            Stat.CONNECTIONS_PER_CHECK_IN]  # fmt: skip
    zero = positive = 0
    for times in random_windows(300):
        times = times[:HISTORY]
        sizes = padded(len(times)) if RNG.random() < 0.5 else RNG.lognormal(7, 2, len(times))
        full, lean = np.empty(N_STATS), np.empty(N_STATS)
        for out, is_lean in ((full, False), (lean, True)):
            work = new_workspace(HISTORY)
            score_window_paired(times, sizes, params, out, work, null[0], null[1], is_lean)
        if full[Stat.SCORE] > 0.0:
            positive += 1
            np.testing.assert_array_equal(lean, full)
        else:
            zero += 1
            np.testing.assert_array_equal(lean[kept], full[kept])
    assert zero > 50 and positive > 50
