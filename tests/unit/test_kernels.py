"""Numba kernels against their NumPy twins (tests/unit/naive.py) on random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from beaconwatch.config import ScoringConfig
from beaconwatch.scoring import kernels
from beaconwatch.scoring.window_score import (
    N_STATS,
    Stat,
    new_workspace,
    score_window,
    scoring_params,
)
from tests.unit import naive

RNG = np.random.default_rng(20261126)


def random_samples(count: int = 200) -> list[np.ndarray]:
    """Mixed shapes: tiny, ties, heavy tails, constant arrays."""
    out = []
    for _ in range(count):
        n = int(RNG.integers(1, 80))
        kind = RNG.integers(0, 4)
        if kind == 0:
            x = RNG.normal(60, 5, n)
        elif kind == 1:
            x = RNG.exponential(30, n)
        elif kind == 2:
            x = RNG.integers(0, 4, n).astype(np.float64)  # many ties
        else:
            x = np.full(n, 7.5)
        out.append(x)
    return out


@pytest.mark.parametrize("q", [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0])
def test_quantile_matches_numpy_linear(q: float) -> None:
    for x in random_samples():
        assert kernels.quantile_sorted(np.sort(x), q) == pytest.approx(naive.quantile(x, q))


def test_mad_matches_reference() -> None:
    for x in random_samples():
        center = float(np.median(x))
        got = kernels.mad_about(x, center, np.empty(len(x)))
        assert got == pytest.approx(naive.mad(x, center))


def test_bowley_matches_reference_and_is_bounded() -> None:
    for x in random_samples():
        got = kernels.bowley_skewness_sorted(np.sort(x))
        assert got == pytest.approx(naive.bowley(x), abs=1e-12)
        assert -1.0 <= got <= 1.0


def test_cv_matches_reference() -> None:
    for x in random_samples():
        assert kernels.coefficient_of_variation(x) == pytest.approx(naive.cv(x))


def test_cv_of_empty_and_constant_is_zero() -> None:
    assert kernels.coefficient_of_variation(np.empty(0)) == 0.0
    assert kernels.coefficient_of_variation(np.full(5, 3.0)) == 0.0


def _score(times_s: np.ndarray, sizes: np.ndarray, history: int = 32) -> np.ndarray:
    out = np.empty(N_STATS)
    params = scoring_params(ScoringConfig(), history)
    score_window(np.sort(times_s), sizes, params, out, new_workspace(max(history, len(times_s))))
    return out


def test_window_statistics_match_textbook_definitions() -> None:
    for _ in range(200):
        n = int(RNG.integers(3, 64))
        times = np.cumsum(RNG.exponential(40, n))
        sizes = RNG.lognormal(6, 1, n).round()
        out = _score(times, sizes)
        ref = naive.window_stats(times, sizes)
        assert out[Stat.PERIOD_S] == pytest.approx(ref["period_s"])
        assert out[Stat.INTERVAL_MAD_S] == pytest.approx(ref["interval_mad_s"])
        assert out[Stat.INTERVAL_BOWLEY] == pytest.approx(ref["interval_bowley"], abs=1e-12)
        assert out[Stat.INTERVAL_CV] == pytest.approx(ref["interval_cv"])
        assert out[Stat.BYTES_MEDIAN] == pytest.approx(ref["bytes_median"])
        assert out[Stat.BYTES_MAD] == pytest.approx(ref["bytes_mad"])
        assert out[Stat.CONNECTIONS] == ref["connections"]
        assert 0.0 <= out[Stat.SCORE] <= 1.0


def test_score_separates_jittered_beacon_from_poisson_traffic() -> None:
    n = 32
    beacon = np.cumsum(60 * RNG.uniform(0.9, 1.1, n))
    human = np.cumsum(RNG.exponential(60, n))
    sizes = RNG.normal(400, 5, n).round()
    assert _score(beacon, sizes)[Stat.SCORE] > 0.9
    assert _score(human, RNG.lognormal(8, 2, n))[Stat.SCORE] < 0.5


def test_perfect_beacon_scores_one() -> None:
    out = _score(np.arange(32) * 300.0, np.full(32, 512.0))
    assert out[Stat.SCORE] == pytest.approx(1.0)
    assert out[Stat.PERIOD_S] == 300.0


def test_sub_second_bursts_never_score() -> None:
    out = _score(np.arange(32) * 0.2, np.full(32, 512.0))
    assert out[Stat.SCORE] == 0.0
