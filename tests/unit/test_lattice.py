"""The lattice test (scoring/lattice.py) against a NumPy reference, its simulated null
(scoring/lattice_null.py): current, calibrated on fresh Poisson windows; and what it buys
packet-sampled pairs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beaconwatch.config import ScoringConfig
from beaconwatch.scoring import lattice as lat
from beaconwatch.scoring import lattice_null as ln
from beaconwatch.scoring import significance as sig
from beaconwatch.scoring.window_score import (
    N_STATS,
    NullTable,
    Param,
    Stat,
    new_workspace,
    null_tables,
    sampled_scoring_params,
    score_window,
    scoring_params,
)

HISTORY = 32


def reference_log_likelihood(rest: list[float], period: float, variance: float) -> float:
    """Step 3 written out: each phase's wrapped-normal density (variance k v, k beats) mixed
    with the uniform share e, as a ratio to the uniform density."""
    total = 0.0
    e = lat.OFF_LATTICE_SHARE
    for x in rest:
        k = max(1, math.floor(x / period + 0.5))
        v = k * variance
        if v > lat.FLAT_VARIANCE:
            continue  # flat to 1 %: the term is 0
        phase = 2 * math.pi * (x / period - math.floor(x / period + 0.5))
        density = sum(
            math.exp(-((phase + 2 * math.pi * w) ** 2) / (2 * v)) / math.sqrt(2 * math.pi * v)
            for w in range(-lat.WRAPS, lat.WRAPS + 1)
        )
        total += math.log((1 - e) * 2 * math.pi * density + e)
    return total


def reference_lattice(d: np.ndarray, min_period_s: float) -> tuple[float, float]:
    """Each step of the module doc written out: candidates, refinement, phase likelihood."""
    ds = sorted(d.tolist())
    m = len(ds)
    if m < lat.LATTICE_MIN_INTERVALS:
        return math.inf, 0.0
    best = (-math.inf, 0.0, -1)
    for i in range(min(lat.CANDIDATE_INTERVALS, m)):
        for beats in range(1, lat.CANDIDATE_BEATS + 1):
            period = ds[i] / beats
            if period < max(min_period_s, lat.LATTICE_MIN_PERIOD_S):
                continue
            for top in (2, 4, 8, 16):
                ks = [math.floor(x / period + 0.5) for x in ds]
                used = [(x, k) for x, k in zip(ds, ks, strict=True) if 1 <= k <= top]
                if used:
                    period = sum(x for x, _ in used) / sum(k for _, k in used)
            rest = ds[:i] + ds[i + 1 :]
            for variance in lat.PHASE_VARIANCES:
                z = reference_log_likelihood(rest, period, variance)
                if z > best[0]:
                    best = (z, period, i)
    z, period, skip = best
    if skip < 0:
        return math.inf, 0.0
    return -z, period


def thinned_beacon(rng: np.random.Generator, period_s: float, n: int, keep: float = 0.11,
                   jitter: float = 0.1) -> np.ndarray:  # fmt: skip
    """Start times of a beacon (+/- ``jitter`` per beat) of which ``keep`` is exported."""
    t = np.cumsum(period_s * rng.uniform(1 - jitter, 1 + jitter, int(n / keep * 3)))
    return np.round(t[rng.random(len(t)) < keep][:n], 3)


def poisson(
    rng: np.random.Generator,
    n: int,
    events_per_cycle: int = 1,
    scales: tuple[float, ...] = (30, 300, 3000),
) -> np.ndarray:
    scale = float(rng.choice(scales))
    return np.round(np.cumsum(rng.gamma(events_per_cycle, scale, n)), 3)


def lattice_p(times: np.ndarray, cycle: int = 0) -> float:
    d = np.sort(np.diff(times))
    statistic = lat.lattice_statistic(d, 1.0)[0]
    return sig.p_value(ln.detector_lattice_tables(HISTORY)[cycle], len(d), statistic)


@pytest.mark.parametrize("seed", range(40))
def test_kernel_matches_the_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 33))
    times = thinned_beacon(rng, float(rng.choice([60, 300])), n) if seed % 2 else poisson(rng, n)
    d = np.sort(np.diff(times))
    assert lat.lattice_statistic(d, 1.0) == pytest.approx(reference_lattice(d, 1.0), rel=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.5, 5000.0, allow_nan=False), min_size=1, max_size=40),
    st.sampled_from([1.0, 30.0, 400.0]),
)
def test_kernel_matches_the_reference_on_any_intervals(gaps: list[float], floor_s: float) -> None:
    d = np.sort(np.round(np.array(gaps), 3))
    assert lat.lattice_statistic(d, floor_s) == pytest.approx(
        reference_lattice(d, floor_s), rel=1e-9
    )


def test_shipped_tables_match_the_current_sources() -> None:
    # Fails after an edit to scoring/lattice.py or its null: rebuild with `make null-tables`.
    with np.load(ln.LATTICE_SHIPPED_PATH) as data:
        assert str(data["fingerprint"]) == ln.lattice_fingerprint()
        assert int(data["sims"]) == ln.LATTICE_SHIPPED_SIMS
    tables = ln.detector_lattice_tables(HISTORY)
    assert tables.shape == (2, sig.table_rows(HISTORY), sig.N_LEVELS)
    full_gate = np.searchsorted(sig.P_LEVELS, 2.5e-5)  # 4 tests x 2.5e-5 = 1 - full_confidence
    assert np.isfinite(tables[:, lat.LATTICE_MIN_INTERVALS :, full_gate]).all()
    assert (tables[:, : lat.LATTICE_MIN_INTERVALS, :-1] == -np.inf).all()  # too short: p = 1
    assert (null_tables(HISTORY)[:, NullTable.LATTICE] == tables).all()


@pytest.mark.parametrize("cycle", [0, 1])
def test_poisson_arrivals_are_as_rare_on_a_lattice_as_the_p_value_says(cycle: int) -> None:
    # Fresh windows (another generator and other scales than the table's): the shipped
    # quantiles hold for them, every connection (gamma(1) gaps) and every second (gamma(2)).
    # At a mean gap of 3000 s or more the 10 s floor drops no candidate: the table is exact
    # there, not merely conservative.
    rng = np.random.default_rng(2026 + cycle)
    for n in (9, 17, 32):
        p = np.array([lattice_p(poisson(rng, n, cycle + 1), cycle) for _ in range(4000)])
        for level in (0.1, 0.01, 0.001):
            assert (p <= level).mean() <= level * 1.3 + 2e-4, (n, level)
        wide = [lattice_p(poisson(rng, n, cycle + 1, (3000, 30000)), cycle) for _ in range(2000)]
        assert 0.07 <= (np.array(wide) <= 0.1).mean() <= 0.13, n


def test_a_thinned_beacon_is_on_its_lattice() -> None:
    rng = np.random.default_rng(7)
    windows = [np.sort(np.diff(thinned_beacon(rng, 300.0, 32))) for _ in range(200)]
    results = [lat.lattice_statistic(d, 1.0) for d in windows]
    assert np.median([abs(period - 300.0) for _, period in results]) < 3.0
    # Whole-second timestamps are on a 1 s lattice: no candidate below 10 s.
    assert lat.lattice_statistic(np.full(20, 3.0) * np.arange(1, 21), 1.0)[0] == np.inf


def test_the_likelihood_reaches_the_full_gate_more_often_than_the_resultant_did() -> None:
    # The 1:100 sampled 300 s case: ~30 exported check-ins a day, 9 beats apart on average.
    # The weighted Rayleigh resultant before took 55.5 % of these windows to the full gate's
    # p (2.5e-5 x 4 tests = 1e-4) and 91 % to 1e-3; the likelihood ratio, which also reads the
    # sharp phases of the 1-3 beat intervals, takes 72 % and 96.5 %.
    rng = np.random.default_rng(300)
    windows = [np.sort(np.diff(thinned_beacon(rng, 300.0, 30))) for _ in range(200)]
    p = np.array([lattice_p(np.concatenate([[0.0], np.cumsum(d)])) for d in windows])
    assert (p <= 2.5e-5).mean() > 0.65 and (p <= 1e-3).mean() > 0.94


def test_an_interval_off_the_lattice_costs_a_bounded_amount() -> None:
    # A sleep stretched by tasking puts one interval at half a period: its term is log e at
    # worst, so the window keeps nearly all of its evidence.
    rng = np.random.default_rng(5)
    d = np.sort(np.diff(thinned_beacon(rng, 300.0, 30)))
    _, period = lat.lattice_statistic(d, 1.0)
    worst = max(lat.phase_log_likelihood(d, -1, period, v) for v in lat.PHASE_VARIANCES)
    stretched = np.sort(np.append(d[1:], 1.5 * period))  # the shortest one moved off
    off = max(lat.phase_log_likelihood(stretched, -1, period, v) for v in lat.PHASE_VARIANCES)
    sharpest = min(lat.PHASE_VARIANCES)
    e = lat.OFF_LATTICE_SHARE
    peak = math.log((1 - e) * math.sqrt(2 * math.pi / sharpest) + e)
    assert worst - off <= peak - math.log(e) + 1e-9
    assert lattice_p(np.concatenate([[0.0], np.cumsum(stretched)])) <= 1e-3


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
    assert np.mean([o[Stat.SCORE] >= 0.8 for o in beacons]) > 0.5  # each window on its own
    assert np.mean([o[Stat.SCORE] >= 0.8 for o in unsampled]) == 0.0  # the fold alone
    hit = [o for o in beacons if o[Stat.SCORE] >= 0.8]
    assert all(abs(o[Stat.PERIOD_S] - 60.0) < 2.0 for o in hit)
    noise = [score(poisson(rng, 32), sampled=True)[Stat.SCORE] for _ in range(2000)]
    assert max(noise) < 0.8


def test_a_sampled_window_scores_only_with_a_full_count_of_check_ins() -> None:
    # No size part for sampled pairs: timing alone over a few check-ins (a page's fetches ~15 s
    # apart) looked like a beacon, so a sampled window needs 12 check-ins; unsampled, 4.
    rng = np.random.default_rng(3)
    t = np.round(np.cumsum(15.0 * rng.uniform(0.97, 1.03, 12)), 3)
    full = scoring_params(ScoringConfig(), HISTORY)[Param.FULL_COUNT]
    assert full == 12
    assert score(t[:11], sampled=True)[Stat.SCORE] == 0.0
    assert score(t[:12], sampled=True)[Stat.SCORE] >= 0.8
    assert score(t[:11], sampled=False)[Stat.SCORE] > 0.0
