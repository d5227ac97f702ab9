"""The lattice test (scoring/lattice.py) against a NumPy reference, its calibration on
Poisson arrivals, and what it buys packet-sampled pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from beaconwatch.config import ScoringConfig
from beaconwatch.scoring import lattice as lat
from beaconwatch.scoring.window_score import (
    N_STATS,
    Stat,
    new_workspace,
    null_tables,
    sampled_scoring_params,
    score_window,
    scoring_params,
)

HISTORY = 32


def reference_lattice(d: np.ndarray, min_period_s: float) -> tuple[float, float, float]:
    """Each step of the module doc written out: candidates, refinement, Rayleigh p."""
    ds = sorted(d.tolist())
    m = len(ds)
    if m < lat.LATTICE_MIN_INTERVALS:
        return 1.0, 0.0, 0.0
    best = (1.0, 0.0, 0.0)
    for i in range(min(lat.CANDIDATE_INTERVALS, m)):
        for beats in range(1, lat.CANDIDATE_BEATS + 1):
            period = ds[i] / beats
            if period < max(min_period_s, lat.LATTICE_MIN_PERIOD_S):
                continue
            for top in (2, 4, 8, 16, 32, 64):
                ks = [math.floor(x / period + 0.5) for x in ds]
                used = [(x, k) for x, k in zip(ds, ks, strict=True) if 1 <= k <= top]
                if used:
                    period = sum(x for x, _ in used) / sum(k for _, k in used)
            rest = ds[:i] + ds[i + 1 :]
            phases = [2 * math.pi * x / period for x in rest]
            r = math.hypot(sum(math.cos(a) for a in phases), sum(math.sin(a) for a in phases))
            n = len(rest)
            p = math.exp(math.sqrt(max(1 + 4 * n + 4 * (n * n - r * r), 0.0)) - (1 + 2 * n))
            p = min(1.0, max(0.0, p))
            on = [
                x for x in rest
                if math.floor(x / period + 0.5) >= 1
                and abs(x - math.floor(x / period + 0.5) * period) <= lat.ON_LATTICE * period
            ]  # fmt: skip
            if p < best[0]:
                best = (p, period, len(on) / n)
    return min(1.0, lat.CANDIDATES * lat.REFINE_TRIALS * best[0]), best[1], best[2]


def thinned_beacon(rng: np.random.Generator, period_s: float, n: int, keep: float = 0.11,
                   jitter: float = 0.1) -> np.ndarray:  # fmt: skip
    """Start times of a beacon (+/- ``jitter`` per beat) of which ``keep`` is exported."""
    t = np.cumsum(period_s * rng.uniform(1 - jitter, 1 + jitter, int(n / keep * 3)))
    return np.round(t[rng.random(len(t)) < keep][:n], 3)


def poisson(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.round(np.cumsum(rng.exponential(float(rng.choice([30, 300, 3000])), n)), 3)


@pytest.mark.parametrize("seed", range(40))
def test_kernel_matches_the_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 33))
    times = thinned_beacon(rng, float(rng.choice([60, 300])), n) if seed % 2 else poisson(rng, n)
    d = np.sort(np.diff(times))
    got = lat.lattice_test(d, 1.0)
    want = reference_lattice(d, 1.0)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_poisson_arrivals_are_as_rare_on_a_lattice_as_the_p_value_says() -> None:
    rng = np.random.default_rng(2026)
    for n in (9, 17, 32):
        p = np.array([lat.lattice_test(np.sort(np.diff(poisson(rng, n))), 1.0)[0]
                      for _ in range(4000)])  # fmt: skip
        for level in (0.1, 0.01, 0.001):
            assert (p <= level).mean() <= level * 1.3 + 1e-4, (n, level)


def test_a_thinned_beacon_is_on_its_lattice() -> None:
    rng = np.random.default_rng(7)
    results = [lat.lattice_test(np.sort(np.diff(thinned_beacon(rng, 300.0, 32))), 1.0)
               for _ in range(200)]  # fmt: skip
    assert np.median([p for p, _, _ in results]) < 1e-3
    assert np.median([abs(period - 300.0) for _, period, _ in results]) < 3.0
    assert np.median([share for _, _, share in results]) > 0.8
    # Whole-second timestamps are on a 1 s lattice: no candidate below 10 s.
    assert lat.lattice_test(np.full(20, 3.0) * np.arange(1, 21), 1.0)[0] == 1.0


def score(times: np.ndarray, sampled: bool) -> np.ndarray:
    params = scoring_params(ScoringConfig(), HISTORY)
    if sampled:
        params = sampled_scoring_params(params)
    out = np.empty(N_STATS)
    sizes = np.full(len(times), 140.0)  # one or two sampled packets
    score_window(times, sizes, params, out, new_workspace(HISTORY), null_tables(HISTORY)[0])
    return out


def test_sampled_pairs_score_on_the_lattice_and_poisson_does_not() -> None:
    rng = np.random.default_rng(11)
    beacons = [score(thinned_beacon(rng, 60.0, 32), sampled=True) for _ in range(100)]
    unsampled = [score(thinned_beacon(rng, 60.0, 32), sampled=False) for _ in range(100)]
    assert np.mean([o[Stat.SCORE] >= 0.8 for o in beacons]) > 0.3  # each window on its own
    assert np.mean([o[Stat.SCORE] >= 0.8 for o in unsampled]) == 0.0  # the fold alone
    hit = [o for o in beacons if o[Stat.SCORE] >= 0.8]
    assert all(abs(o[Stat.PERIOD_S] - 60.0) < 2.0 for o in hit)
    noise = [score(poisson(rng, 32), sampled=True)[Stat.SCORE] for _ in range(2000)]
    assert max(noise) < 0.8
