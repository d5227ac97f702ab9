"""The interval-CV test against Poisson arrivals: shipped table current, calibrated, combined."""

from __future__ import annotations

import numpy as np
import pytest

from beaconwatch.scoring import cv_significance as cvs
from beaconwatch.scoring import significance as sig
from beaconwatch.scoring.kernels import coefficient_of_variation


def test_shipped_table_matches_the_current_sources() -> None:
    # Fails after an edit to the CV null: rebuild with `make null-tables`.
    with np.load(cvs.CV_SHIPPED_PATH) as data:
        assert str(data["fingerprint"]) == cvs.cv_fingerprint()
        assert int(data["sims"]) == cvs.CV_SHIPPED_SIMS
    tables = cvs.detector_cv_tables(32)
    assert tables.shape == (2, sig.table_rows(32), sig.N_LEVELS)
    assert np.isfinite(tables[:, 3:, np.searchsorted(sig.P_LEVELS, 1e-5)]).all()


@pytest.mark.parametrize(("events", "events_per_cycle"), [(16, 1), (32, 1), (32, 2)])
def test_poisson_p_values_are_calibrated(events: int, events_per_cycle: int) -> None:
    table = cvs.detector_cv_tables(32)[events_per_cycle - 1]
    rng = np.random.default_rng(77 + events)
    m = events - 1
    gaps = rng.gamma(events_per_cycle, 60.0, size=(40_000, m))
    times = np.floor(np.cumsum(gaps, axis=1) * 1000 + 0.5) / 1000
    intervals = np.diff(np.concatenate([np.zeros((len(times), 1)), times], axis=1), axis=1)
    p = np.array([sig.p_value(table, m, coefficient_of_variation(d)) for d in intervals])
    for alpha in (0.1, 0.01, 0.001):
        # Conservative by at most one level (21 %), and no more than Monte-Carlo noise below.
        share = float(np.mean(p <= alpha))
        assert 0.6 * alpha <= share <= 1.25 * alpha, (alpha, share)


def test_regular_intervals_are_significant_and_bursts_are_not() -> None:
    table = cvs.detector_cv_tables(32)[0]
    rng = np.random.default_rng(3)
    jittered = rng.uniform(30.0, 90.0, 23)  # +/-50 % symmetric jitter, 24 connections
    bursty = np.concatenate([rng.exponential(3.0, 20), rng.exponential(3600.0, 3)])
    assert sig.p_value(table, 23, coefficient_of_variation(jittered)) <= 1e-5
    assert sig.p_value(table, 23, coefficient_of_variation(bursty)) == 1.0


def test_combined_p_value_is_bonferroni() -> None:
    assert cvs.combined_p_value(0.3, 0.01) == pytest.approx(0.02)
    assert cvs.combined_p_value(0.8, 0.9) == 1.0
