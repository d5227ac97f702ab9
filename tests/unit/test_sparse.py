"""scoring/sparse.py: the closed-form tests for windows of a handful of check-ins.

Each kernel is checked against its NumPy twin in naive_scoring, and each p-value against what
it claims: the spacing p-value is exact for Poisson arrivals, the size bound and the combined
p-value are at least as large as the rejection rate under their null.
"""

from __future__ import annotations

import numpy as np
import pytest

from beaconwatch.config import Config, with_overrides
from beaconwatch.scoring.sparse import (
    SIZE_RESOLUTION_LN,
    size_p_value,
    spacing_p_value,
    sparse_p_value,
)
from beaconwatch.scoring.window_score import (
    N_STATS,
    Stat,
    new_workspace,
    null_tables,
    score_window,
    scoring_params,
)
from tests.unit import naive_scoring

DAY_S = 86_400.0


def test_two_intervals_within_r_happen_with_probability_r() -> None:
    # m = 2: the first interval's share is uniform, so |2u - 1| <= r has probability r.
    for r in (0.02, 0.1, 0.5):
        d = np.array([1.0 + r, 1.0 - r])
        assert spacing_p_value(d) == pytest.approx(r, rel=1e-12)


@pytest.mark.parametrize("m", [2, 3, 4, 5, 6])
def test_spacing_p_value_matches_the_reference(m: int) -> None:
    rng = np.random.default_rng(m)
    for _ in range(200):
        d = rng.uniform(0.5, 1.5, m) * rng.choice([1.0, 1e3, 1e5])
        assert spacing_p_value(d) == pytest.approx(naive_scoring.spacing_p_value(d), abs=1e-12)


@pytest.mark.parametrize("m", [2, 3, 5, 6])
def test_spacing_p_value_is_exact_for_poisson_arrivals(m: int) -> None:
    """P(p <= a) = a for exponential intervals, whatever their rate."""
    rng = np.random.default_rng(100 + m)
    sims = 40_000
    p = np.array([spacing_p_value(d) for d in rng.exponential(3_600.0, (sims, m))])
    for a in (0.01, 0.05, 0.2, 0.5):
        share = float(np.mean(p <= a))
        sd = np.sqrt(a * (1 - a) / sims)
        assert abs(share - a) < 4.5 * sd, (a, share)


def test_size_bound_holds_at_the_largest_density() -> None:
    """Log sizes uniform over 1 / f (density exactly f): the bound never undershoots."""
    rng = np.random.default_rng(7)
    f = 1.0
    for n in (3, 4, 6):
        sims = 40_000
        sizes = 2_000.0 * np.exp(rng.uniform(0.0, 1.0 / f, (sims, n)))
        p = np.array([size_p_value(s, f, 200.0) for s in sizes])
        for a in (1e-3, 1e-2, 0.1):
            share = float(np.mean(p <= a))
            assert share <= a + 4.5 * np.sqrt(a / sims), (n, a, share)


def test_size_p_value_matches_the_reference() -> None:
    rng = np.random.default_rng(3)
    for _ in range(300):
        n = int(rng.integers(2, 8))
        sizes = np.exp(rng.uniform(4.0, 12.0, n)) if rng.random() < 0.5 else (
            2_000.0 + rng.integers(0, 64, n) + (rng.random(n) < 0.2) * 50_000.0
        )  # fmt: skip
        density = float(rng.choice([0.3, 1.0, 3.0]))
        want = naive_scoring.size_p_value(sizes, density, 200.0)
        assert size_p_value(sizes, density, 200.0) == pytest.approx(want, rel=1e-12, abs=1e-300)


def test_size_p_value_edges() -> None:
    same = np.full(3, 2_000.0)
    assert size_p_value(same, 1.0, 200.0) == pytest.approx(3 * SIZE_RESOLUTION_LN**2)
    assert size_p_value(np.array([60.0, 60.0, 60.0]), 1.0, 200.0) == 1.0  # SYNs: no payload
    assert size_p_value(same, 0.0, 200.0) == 1.0  # density 0: sizes off
    # One tasked check-in of four: the three others still count.
    tasked = np.array([2_000.0, 2_010.0, 2_020.0, 60_000.0])
    assert size_p_value(tasked, 1.0, 200.0) < 1e-2


def test_sparse_p_value_is_calibrated_under_its_null() -> None:
    """Exponential intervals and log sizes of density f: Fisher's combination keeps P(p <= a)
    at or below a (the plain product would reject a (1 - ln a), 5.6x too often at 1e-2)."""
    rng = np.random.default_rng(11)
    sims = 40_000
    d = rng.exponential(DAY_S, (sims, 2))
    sizes = 2_000.0 * np.exp(rng.uniform(0.0, 1.0, (sims, 3)))
    p = np.array([sparse_p_value(d[i], sizes[i], 1.0, 200.0) for i in range(sims)])
    for a in (1e-3, 1e-2, 0.1):
        share = float(np.mean(p <= a))
        assert share <= a + 4.5 * np.sqrt(a / sims), (a, share)
    want = [naive_scoring.sparse_p_value(d[i], sizes[i], 1.0, 200.0) for i in range(200)]
    assert p[:200] == pytest.approx(want, rel=1e-12)


def _score(times_s: np.ndarray, sizes: np.ndarray, **scoring: float | int) -> np.ndarray:
    config = with_overrides(Config(), scoring=scoring) if scoring else Config()
    out = np.empty(N_STATS)
    tables = null_tables(32)[0]
    score_window(times_s, sizes, scoring_params(config.scoring, 32), out, new_workspace(32),
                 tables)  # fmt: skip
    return out


def test_four_daily_check_ins_of_one_size_score_as_a_beacon_with_sizes_on() -> None:
    times = np.array([0.0, 0.97 * DAY_S, 2.01 * DAY_S, 3.05 * DAY_S])
    sizes = np.array([2_400.0, 2_410.0, 2_430.0, 2_405.0])
    out = _score(times, sizes, sparse_size_density=1.0)
    assert out[Stat.SCORE] >= 0.8
    # Without the sparse test, or with sizes off (the default): the tables and the spacing
    # alone do not reach the threshold with three intervals 5 % apart.
    off = _score(times, sizes, sparse_size_density=1.0, sparse_max_connections=0)
    assert off[Stat.SCORE] < 0.8
    assert _score(times, sizes)[Stat.SCORE] < 0.8
    # Browsing-like sizes: the same timing is no beacon.
    browsing = np.array([900.0, 14_000.0, 3_100.0, 52_000.0])
    assert _score(times, browsing, sparse_size_density=1.0)[Stat.SCORE] < 0.8
    # Three connections are never scored, sizes or not.
    assert _score(times[:3], sizes[:3], sparse_size_density=1.0)[Stat.SCORE] == 0.0


def test_six_check_ins_twelve_hours_apart_score_on_timing_alone() -> None:
    # 5 intervals within 10 % of 12 h, tasking on one: the exact spacing test decides (the
    # simulated tables alone leave this window at 0.76).
    d = 0.5 * DAY_S * np.array([1.09, 1.09, 0.9, 0.96, 0.94])
    times = np.cumsum(np.r_[0.0, d])
    sizes = np.array([2_400.0, 2_410.0, 60_000.0, 2_430.0, 2_405.0, 2_420.0])
    assert _score(times, sizes)[Stat.SCORE] >= 0.8
    assert _score(times, sizes, sparse_max_connections=0)[Stat.SCORE] < 0.8


@pytest.mark.parametrize("n", [4, 5, 7, 8])
@pytest.mark.parametrize("density", [0.0, 1.0])
def test_score_window_matches_the_reference_on_sparse_windows(n: int, density: float) -> None:
    rng = np.random.default_rng(20 + n)
    config = with_overrides(Config(), scoring={"sparse_size_density": density}).scoring
    sparse = (config.sparse_max_connections, density, config.sparse_min_bytes)
    tables = null_tables(32)[0]
    for _ in range(40):
        jitter = float(rng.choice([0.05, 0.2, 1.0]))
        times = np.cumsum(np.r_[0.0, DAY_S * rng.uniform(1 - jitter, 1 + jitter, n - 1)])
        sizes = 2_000.0 + rng.integers(0, 64, n) + (rng.random(n) < 0.3) * 40_000.0
        out = _score(times, sizes, sparse_size_density=density)
        want = naive_scoring.window_score(
            times, sizes, tables=tables, min_period_s=config.min_period_s,
            weights=(config.weight_intervals, config.weight_sizes, config.weight_count),
            full_count=12.0, spread_free=config.spread_free,
            spread_tolerance=config.spread_tolerance, min_confidence=config.min_confidence,
            full_confidence=config.full_confidence, missed_allowance=config.missed_allowance,
            sparse=sparse,
        )  # fmt: skip
        assert out[Stat.SCORE] == pytest.approx(want, abs=1e-9)
        stats = naive_scoring.window_stats(times, sizes, tables, sparse)
        assert out[Stat.CONFIDENCE] == pytest.approx(stats["confidence"], abs=1e-12)
