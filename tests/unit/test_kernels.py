"""Numba kernels against their NumPy twins (tests/unit/naive.py) on random inputs."""

from __future__ import annotations

import numpy as np
import pytest

from beaconwatch.scoring import kernels
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


def test_gap_floor_matches_reference() -> None:
    for x in random_samples():
        srt = np.sort(x)
        got = kernels.gap_floor_sorted(srt, kernels.median_sorted(srt))
        assert got == pytest.approx(naive.gap_floor(x))


def test_gap_floor_tells_gappy_beacons_from_poisson() -> None:
    rng = np.random.default_rng(9)
    beats = rng.uniform(54.0, 66.0, 30)
    beats[::3] += rng.uniform(54.0, 66.0, 10)  # every third check-in missed
    poisson = np.sort(rng.exponential(60.0, 30))
    beats = np.sort(beats)
    assert kernels.gap_floor_sorted(poisson, kernels.median_sorted(poisson)) < 0.35
    assert kernels.gap_floor_sorted(beats, kernels.median_sorted(beats)) > 0.7
    assert kernels.gap_floor_sorted(np.empty(0), 1.0) == 0.0
    assert kernels.gap_floor_sorted(np.ones(3), 0.0) == 0.0


def test_cv_of_empty_and_constant_is_zero() -> None:
    assert kernels.coefficient_of_variation(np.empty(0)) == 0.0
    assert kernels.coefficient_of_variation(np.full(5, 3.0)) == 0.0


def test_sort_small_matches_numpy() -> None:
    """Insertion sort up to INSERTION_SORT_MAX values, numba's sort beyond: both == np.sort,
    on random, tied, constant, sorted and reversed inputs of every size around the switch."""
    samples = [*random_samples(), np.empty(0)]
    for n in range(kernels.INSERTION_SORT_MAX - 2, kernels.INSERTION_SORT_MAX + 3):
        samples += [RNG.exponential(30, n), np.arange(n, dtype=float), np.arange(n)[::-1] * 1.0]
    for x in samples:
        got = x.copy()
        kernels.sort_small(got)
        np.testing.assert_array_equal(got, np.sort(x))
