"""Monte-Carlo periodicity test: null table, p-values, calibration, Rayleigh resultant."""

from __future__ import annotations

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


def test_null_table_is_cached_deterministic_and_read_only() -> None:
    a = sig.null_table(32)
    assert sig.null_table(32) is a
    assert not a.flags.writeable
    b = sig.null_table.__wrapped__(32)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (32, sig.NULL_SIMS)
    assert np.all(np.diff(a[3:], axis=1) >= 0)


def test_null_rows_are_the_reference_fits_of_poisson_windows() -> None:
    sims, seed = 40, 7
    table = sig.null_table.__wrapped__(9, sims, seed)
    rng = np.random.default_rng(seed)
    for m in range(3, 9):
        gaps = rng.exponential(sig.NULL_MEAN_INTERVAL_S, size=(sims, m))
        times = np.concatenate([np.zeros((sims, 1)), np.cumsum(gaps, axis=1)], axis=1)
        want = sorted(ref.fit_window(np.floor(t * 1000 + 0.5) / 1000).quality for t in times)
        np.testing.assert_allclose(table[m], want, rtol=1e-9)


def test_p_value_matches_reference() -> None:
    table = sig.null_table(16)
    rng = np.random.default_rng(1)
    for _ in range(500):
        m = int(rng.integers(0, 20))
        stat = float(rng.choice([rng.uniform(0, 3), np.inf, 0.0]))
        row = ref.null_row(table, m)
        want = 1.0 if row is None else ref.p_value(row, stat)
        assert sig.p_value(table, m, stat) == pytest.approx(want)


def test_clean_beacons_are_confident() -> None:
    table = sig.null_table(32)
    rng = np.random.default_rng(2)
    for events in (6, 12, 32):
        for shape in ("subtractive", "symmetric", "additive"):
            t = beacon(rng, shape, 300.0, 0.02, events)
            assert confidence(t, table) > 0.99


def test_poisson_p_values_are_calibrated() -> None:
    table = sig.null_table(32)
    rng = np.random.default_rng(3)  # not the table's seed: fresh Poisson windows
    p = np.array([1 - confidence(np.round(np.cumsum(rng.exponential(60, n)), 3), table)
                  for n in rng.integers(8, 33, 3000)])  # fmt: skip
    assert np.mean(p < 0.05) == pytest.approx(0.05, abs=0.015)
    assert np.mean(p < 0.5) == pytest.approx(0.5, abs=0.05)


def test_phase_resultant_matches_reference_and_sinc() -> None:
    rng = np.random.default_rng(4)
    for _ in range(200):
        d = rng.uniform(1, 100, int(rng.integers(0, 40)))
        p = float(rng.uniform(0.5, 100))
        assert sig.phase_resultant(d, p) == pytest.approx(ref.phase_resultant(d, p), abs=1e-12)
    # Uniform jitter of width w at period p: |sinc(w / p)|, about 0.41 at 50 % subtractive.
    d = rng.uniform(30, 60, 200_000)
    assert sig.phase_resultant(d, 45.0) == pytest.approx(abs(np.sinc(30 / 45)), abs=0.01)
