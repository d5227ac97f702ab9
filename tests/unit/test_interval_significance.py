"""Tests on the raw intervals against Poisson arrivals (CV, gap floor): shipped tables current,
calibrated, telling beacons from bursts, combined with the fit by Bonferroni."""

from __future__ import annotations

import numpy as np
import pytest

from beaconwatch.scoring import interval_significance as isig
from beaconwatch.scoring import significance as sig
from beaconwatch.scoring.interval_significance import RawTest
from tests.unit import naive


def statistics(intervals: np.ndarray) -> np.ndarray:
    out = np.empty(isig.N_RAW_TESTS)
    isig.raw_statistics(intervals, np.empty(len(intervals)), out)
    return out


def test_shipped_tables_match_the_current_sources() -> None:
    # Fails after an edit to the null of either statistic: rebuild with `make null-tables`.
    with np.load(isig.INTERVAL_SHIPPED_PATH) as data:
        assert str(data["fingerprint"]) == isig.interval_fingerprint()
        assert int(data["sims"]) == isig.INTERVAL_SHIPPED_SIMS
    tables = isig.detector_interval_tables(32)
    assert tables.shape == (2, isig.N_RAW_TESTS, sig.table_rows(32), sig.N_LEVELS)
    assert np.isfinite(tables[..., 3:, np.searchsorted(sig.P_LEVELS, 1e-5)]).all()


def test_statistics_match_the_numpy_twins() -> None:
    rng = np.random.default_rng(4)
    for m in (1, 2, 9, 10, 11, 31):
        d = rng.exponential(60.0, m)
        got = statistics(d)
        assert got[RawTest.CV] == pytest.approx(naive.cv(d))
        assert got[RawTest.FLOOR] == pytest.approx(-naive.gap_floor(d))


@pytest.mark.parametrize("test", list(RawTest))
@pytest.mark.parametrize(("events", "events_per_cycle"), [(16, 1), (32, 1), (32, 2)])
def test_poisson_p_values_are_calibrated(test: RawTest, events: int, events_per_cycle: int) -> None:
    table = isig.detector_interval_tables(32)[events_per_cycle - 1, test]
    rng = np.random.default_rng(77 + events)
    m = events - 1
    gaps = rng.gamma(events_per_cycle, 60.0, size=(40_000, m))
    times = np.floor(np.cumsum(gaps, axis=1) * 1000 + 0.5) / 1000
    intervals = np.diff(np.concatenate([np.zeros((len(times), 1)), times], axis=1), axis=1)
    p = np.array([sig.p_value(table, m, statistics(d)[test]) for d in intervals])
    for alpha in (0.1, 0.01, 0.001):
        # Conservative by at most one level (21 %), and no more than Monte-Carlo noise below.
        share = float(np.mean(p <= alpha))
        assert 0.6 * alpha <= share <= 1.25 * alpha, (alpha, share)


def test_regular_intervals_are_significant_and_bursts_are_not() -> None:
    tables = isig.detector_interval_tables(32)[0]
    rng = np.random.default_rng(3)
    jittered = rng.uniform(30.0, 90.0, 23)  # +/-50 % symmetric jitter, 24 connections
    bursty = np.concatenate([rng.exponential(3.0, 20), rng.exponential(3600.0, 3)])
    # Wide jitter is the CV's case; the floor (0.5 here) still says "not Poisson".
    for test, at_most in ((RawTest.CV, 1e-5), (RawTest.FLOOR, 1e-3)):
        assert sig.p_value(tables[test], 23, statistics(jittered)[test]) <= at_most, test
        # Bursts are Poisson inside: no evidence either way.
        assert sig.p_value(tables[test], 23, statistics(bursty)[test]) >= 0.1, test


def test_the_floor_sees_through_missed_check_ins_where_the_cv_does_not() -> None:
    # 10 % jitter, 17 connections, 7 check-ins missed (two of them twice in a row): the long
    # intervals inflate the CV, not the floor.
    tables = isig.detector_interval_tables(32)[0]
    rng = np.random.default_rng(11)
    beats = rng.uniform(54.0, 66.0, 16)
    beats[[2, 9, 13]] += rng.uniform(54.0, 66.0, 3)
    beats[[5, 11]] += rng.uniform(108.0, 132.0, 2)
    got = statistics(beats)
    p_cv = sig.p_value(tables[RawTest.CV], 16, got[RawTest.CV])
    p_floor = sig.p_value(tables[RawTest.FLOOR], 16, got[RawTest.FLOOR])
    assert p_floor <= 1e-5
    assert p_cv >= 1e-3


def test_combined_p_value_is_bonferroni_over_three() -> None:
    assert isig.combined_p_value(0.3, 0.01, 0.5) == pytest.approx(0.03)
    assert isig.combined_p_value(0.8, 0.9, 0.4) == 1.0
