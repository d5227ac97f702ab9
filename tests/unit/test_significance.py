"""Monte-Carlo periodicity test: quantile tables, p-values, the shipped table, calibration."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest

from beaconwatch.scoring import significance as sig
from beaconwatch.scoring.periodicity import N_FIT, fit_window
from tests.unit import naive_scoring as ref
from tests.unit.test_periodicity import beacon


def confidence(times_s: np.ndarray, table: np.ndarray) -> float:
    fit = np.empty(N_FIT)
    fit_window(times_s, np.empty((4, len(times_s))), fit, np.empty(N_FIT))
    return 1.0 - sig.p_value(table, len(times_s) - 1, sig.fit_statistic(fit))


def ref_quantiles(stats: list[float]) -> list[float]:
    """x_(r), r = floor(P (N + 1)) (1-based), -inf below the first and +inf past the last."""
    x = sorted(stats)
    out = []
    for level in sig.P_LEVELS:
        r = math.floor(level * (len(x) + 1))
        out.append(-math.inf if r == 0 else math.inf if r > len(x) else x[r - 1])
    return out


def shipped() -> np.ndarray:
    tables, why = sig.read_shipped()
    assert tables is not None, f"{why}: run `make null-tables`"
    return tables


def test_levels_are_twelve_per_decade_with_exact_decades() -> None:
    assert sig.P_LEVELS.shape == (sig.N_LEVELS,) == (64,)
    assert np.all(np.diff(sig.P_LEVELS) > 0)
    assert sig.P_LEVELS[-1] == 1.0
    for decade in (0.1, 0.01, 0.001, 1e-4, 1e-5):
        assert decade in sig.P_LEVELS
    assert 1 / (sig.NULL_SHIPPED_SIMS + 1) <= sig.P_LEVELS[0] < 1e-5


def test_null_table_is_cached_deterministic_and_read_only() -> None:
    a = sig.null_table(32)
    assert sig.null_table(32) is a
    assert not a.flags.writeable
    b = sig.null_table.__wrapped__(32)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (32, sig.N_LEVELS)
    assert np.all(a[:, 1:] >= a[:, :-1])
    resolvable = sig.P_LEVELS * (sig.NULL_SIMS + 1) >= 1
    assert np.all(a[3:, ~resolvable] == -np.inf)
    assert np.all(np.isfinite(a[3:, resolvable][:, :-1]))
    assert np.all(a[:, -1] == np.inf)


@pytest.mark.parametrize("events_per_cycle", [1, 2])
def test_null_rows_are_the_reference_quantiles_of_reference_fits(events_per_cycle: int) -> None:
    sims, seed = 40, 7
    table = sig.null_table.__wrapped__(9, sims, seed, events_per_cycle)
    for m in range(3, 9):
        rng = sig.null_rng(seed, m, events_per_cycle)
        gaps = sig.null_gaps(rng, sims, m, events_per_cycle)
        times = np.concatenate([np.zeros((sims, 1)), np.cumsum(gaps, axis=1)], axis=1)
        stats = [ref.fit_window(np.floor(t * 1000 + 0.5) / 1000).quality for t in times]
        np.testing.assert_allclose(table[m], ref_quantiles(stats), rtol=1e-9)
    assert np.all(table[:3, :-1] == -np.inf)  # rows no window is tested with claim nothing


def test_null_gaps_are_every_kth_poisson_arrival() -> None:
    rng = np.random.default_rng(8)
    for k in (1, 2):
        gaps = sig.null_gaps(rng, 200_000, 1, k).ravel()
        mean = k * sig.NULL_MEAN_INTERVAL_S
        assert gaps.mean() == pytest.approx(mean, rel=0.01)
        assert gaps.var() == pytest.approx(k * sig.NULL_MEAN_INTERVAL_S**2, rel=0.02)


def test_p_value_matches_reference() -> None:
    table = sig.null_table(16)
    rng = np.random.default_rng(1)
    for _ in range(2000):
        m = int(rng.integers(0, 20))
        row = ref.null_row(table, m)
        tie = table[min(m, 15), rng.integers(0, sig.N_LEVELS)]
        stat = float(rng.choice([rng.uniform(0, 3), np.inf, np.nan, 0.0, -np.inf, tie]))
        want = 1.0 if row is None else ref.p_value(row, stat)
        assert sig.p_value(table, m, stat) == want


def test_p_value_is_the_monte_carlo_p_value_rounded_up_to_the_next_level() -> None:
    stats = sig.null_statistics(10, 3000, seed=5)
    table = sig.empty_table(11)
    table[10] = sig.quantile_row(stats)
    rng = np.random.default_rng(5)
    for s in np.concatenate([rng.choice(stats, 500), rng.uniform(0, 3, 500), stats[:20]]):
        p = sig.p_value(table, 10, s)
        mc = (1 + np.sum(stats <= s)) / (len(stats) + 1)
        assert mc <= p  # conservative
        j = int(np.searchsorted(sig.P_LEVELS, p))
        if j > 0 and table[10, j - 1] > -np.inf:
            assert sig.P_LEVELS[j - 1] < mc  # ...by less than one level


def test_best_p_value_is_the_lowest_resolvable_level() -> None:
    for table in (sig.null_table(16), sig.null_table.__wrapped__(9, 40, 7), sig.empty_table(3)):
        assert sig.best_p_value(table) == ref.best_p_value(table)
    assert sig.best_p_value(sig.null_table(16)) == pytest.approx(5.62e-4, rel=1e-3)
    assert sig.best_p_value(sig.empty_table(3)) == 1.0
    assert sig.best_p_value(shipped()[0]) == sig.best_p_value(shipped()[1]) == sig.P_LEVELS[0]


def test_clean_beacons_are_confident() -> None:
    rng = np.random.default_rng(2)
    for table in (sig.null_table(32), sig.detector_null_tables(32)[0]):
        for events in (6, 12, 32):
            for shape in ("subtractive", "symmetric", "additive"):
                t = beacon(rng, shape, 300.0, 0.02, events)
                assert confidence(t, table) > 0.99
    # The shipped table resolves a clean 32-event beacon down to its lowest level.
    t = beacon(rng, "subtractive", 300.0, 0.02, 32)
    assert confidence(t, shipped()[0]) == 1.0 - sig.P_LEVELS[0]


@pytest.mark.parametrize("events", [16, 32])
def test_poisson_p_values_are_calibrated(events: int) -> None:
    # Fresh Poisson windows (another seed, another scale) against the shipped table.
    n = 50_000
    rng = np.random.default_rng(3 + events)
    stats = np.empty(n)
    sig._null_stats(rng.exponential(60.0, size=(n, events - 1)), stats)
    table = sig.detector_null_tables(events)[0]
    p = np.array([sig.p_value(table, events - 1, s) for s in stats])
    for alpha in (0.1, 0.01, 0.001):
        # Binomial error of these windows plus the Monte-Carlo error of the shipped quantile.
        sd = math.sqrt(alpha * (1 - alpha) * (1 / n + 1 / sig.NULL_SHIPPED_SIMS))
        assert np.mean(p <= alpha) <= alpha + 3 * sd  # valid
        assert np.mean(p <= alpha) == pytest.approx(alpha, abs=4 * sd)  # and not wasteful


def test_shipped_table_was_built_from_the_current_sources() -> None:
    with np.load(sig.SHIPPED_PATH, allow_pickle=False) as f:
        assert str(f["fingerprint"]) == sig.null_fingerprint(), (
            "scoring/periodicity.py or the null simulation changed: run `make null-tables`"
        )
        assert int(f["sims"]) == sig.NULL_SHIPPED_SIMS
        assert int(f["seed"]) == sig.NULL_SEED
        assert int(f["max_intervals"]) == sig.NULL_MAX_INTERVALS
        np.testing.assert_array_equal(f["p_levels"], sig.P_LEVELS)
    tables = shipped()
    assert tables.shape == (2, sig.NULL_MAX_INTERVALS + 1, sig.N_LEVELS)
    assert np.all(tables[:, :, 1:] >= tables[:, :, :-1])
    # Deep levels are resolved in every row: 1e-5 and the lowest level are finite.
    deep = tables[:, 3:, : int(np.searchsorted(sig.P_LEVELS, 1e-5)) + 1]
    assert np.all(np.isfinite(deep))


def test_shipped_table_agrees_with_a_fresh_simulation() -> None:
    sims = 20_000
    tables = shipped()
    levels = (sig.P_LEVELS >= 0.01) & (sig.P_LEVELS <= 0.5)
    for k_index, k in enumerate(sig.SHIPPED_CYCLES):
        for m in (3, 15, 31, 64):
            fresh = sig.null_statistics(m, sims, seed=sig.NULL_SEED + 1, events_per_cycle=k)
            for level, q in zip(sig.P_LEVELS[levels], tables[k_index, m, levels], strict=True):
                # The share of fresh statistics below the shipped quantile is the level, up to
                # the Monte-Carlo error of both simulations.
                sd = math.sqrt(level * (1 - level) * (1 / sims + 1 / sig.NULL_SHIPPED_SIMS))
                assert np.mean(fresh < q) == pytest.approx(level, abs=5 * sd), (k, m, level)


def test_detector_null_tables_use_the_shipped_table() -> None:
    got = sig.detector_null_tables(32)
    assert got.shape == (2, 32, sig.N_LEVELS)
    assert got.flags.writeable and got.flags.c_contiguous
    np.testing.assert_array_equal(got, shipped()[:, :32])
    assert sig.detector_null_tables(1000).shape == (2, sig.NULL_MAX_INTERVALS + 1, sig.N_LEVELS)


def test_a_stale_shipped_table_falls_back_to_simulation_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stale = tmp_path / "stale.npz"
    with np.load(sig.SHIPPED_PATH) as f:
        np.savez(stale, **{**dict(f), "fingerprint": np.str_("0" * 64)})
    want = np.stack([sig.null_table(8), sig.null_table(8, events_per_cycle=2)])
    for path in (stale, tmp_path / "missing.npz"):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=sig.__name__):
            got = sig.detector_null_tables(8, path)
        np.testing.assert_array_equal(got, want)
        assert "stale" in caplog.text and "make null-tables" in caplog.text


def test_phase_resultant_matches_reference_and_sinc() -> None:
    rng = np.random.default_rng(4)
    for _ in range(200):
        d = rng.uniform(1, 100, int(rng.integers(0, 40)))
        p = float(rng.uniform(0.5, 100))
        assert sig.phase_resultant(d, p) == pytest.approx(ref.phase_resultant(d, p), abs=1e-12)
    # Uniform jitter of width w at period p: |sinc(w / p)|, about 0.41 at 50 % subtractive.
    d = rng.uniform(30, 60, 200_000)
    assert sig.phase_resultant(d, 45.0) == pytest.approx(abs(np.sinc(30 / 45)), abs=0.01)
