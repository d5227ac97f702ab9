"""Period, jitter and missed-beat fit: kernel vs NumPy twin, and behaviour on synthetic C2."""

from __future__ import annotations

import numpy as np
import pytest

from beaconwatch.scoring import periodicity as per
from beaconwatch.scoring.periodicity import N_FIT, Fit, Shape
from tests.unit import naive_scoring as ref

RNG = np.random.default_rng(20260301)
SHAPES = {"subtractive": Shape.SUBTRACTIVE, "symmetric": Shape.SYMMETRIC,
          "additive": Shape.ADDITIVE}  # fmt: skip


def beacon(rng: np.random.Generator, shape: str, sleep_s: float, jitter: float, events: int,
           missed: float = 0.0) -> np.ndarray:  # fmt: skip
    """Check-in times (ms resolution) of a beacon: CS subtracts, Sliver adds, Empire +/-."""
    times = [0.0]
    t = 0.0
    while len(times) < events:
        if shape == "subtractive":
            t += rng.uniform(sleep_s * (1 - jitter), sleep_s)
        elif shape == "additive":
            t += sleep_s + rng.uniform(0, jitter * sleep_s)
        else:
            t += rng.uniform(sleep_s * (1 - jitter), sleep_s * (1 + jitter))
        if rng.random() >= missed:
            times.append(t)
    return np.round(np.array(times), 3)


def fit(times_s: np.ndarray) -> np.ndarray:
    out = np.empty(N_FIT)
    n = len(times_s)
    per.fit_window(times_s, np.empty((4, n)), out, np.empty(N_FIT))
    return out


def random_windows(count: int) -> list[np.ndarray]:
    out = []
    for _ in range(count):
        n = int(RNG.integers(4, 40))
        kind = RNG.integers(0, 5)
        if kind == 0:
            t = np.cumsum(RNG.exponential(60, n))
        elif kind == 1:
            shape = str(RNG.choice(list(SHAPES)))
            t = beacon(RNG, shape, float(RNG.choice([5, 60, 300])), float(RNG.uniform(0, 0.8)),
                       n, float(RNG.uniform(0, 0.4)))  # fmt: skip
        elif kind == 2:  # ties and zero intervals
            t = np.cumsum(RNG.integers(0, 3, n).astype(float) * 30)
        elif kind == 3:  # beacon plus stray connections
            t = np.sort(np.concatenate([np.arange(n) * 60.0, RNG.uniform(0, 60 * n, 3)]))
        else:  # bursty sessions
            t = np.sort(np.cumsum(RNG.exponential(1, n) * RNG.choice([1, 600], n)))
        out.append(np.round(np.sort(t), 3))
    return out


def test_support_is_unbiased_for_uniform_samples() -> None:
    for m, r_expected in [(4, 1), (10, 2)]:
        est = np.array([per.support_sorted(np.sort(RNG.uniform(10, 20, m))) for _ in range(4000)])
        assert est.mean(axis=0) == pytest.approx([10, 20], abs=0.1), r_expected


def test_refold_beats_matches_reference() -> None:
    for _ in range(2000):
        a = float(RNG.uniform(0, 100))
        b = a + float(RNG.uniform(0, 100))
        d = float(RNG.uniform(0, 600))
        tol = max(0.01 * b, 0.05)
        assert per.refold_beats(d, a, b, tol) == ref.beats_of(d, a, b, tol)


def test_singles_range_is_exactly_the_one_beat_intervals() -> None:
    # The fit refolds sorted intervals by bisection: the run it finds must be exactly the
    # intervals refold_beats calls single, edges and ties (whole seconds, b = 0) included.
    for _ in range(3000):
        m = int(RNG.integers(1, 40))
        ds = np.sort(np.round(RNG.exponential(float(RNG.choice([1.0, 60.0])), m), 1))
        a = float(RNG.choice([0.0, float(RNG.uniform(0, 60)), float(ds[RNG.integers(0, m)])]))
        b = float(RNG.choice([0.0, a, a + float(RNG.uniform(0, 60)), float(ds[-1])]))
        tol = max(0.01 * b, 0.05)
        singles = [i for i in range(m) if per.refold_beats(float(ds[i]), a, b, tol) == 1]
        lo, hi = per._singles_range(ds, a, b, tol)
        assert list(range(lo, hi)) == singles, (ds, a, b)


def test_fit_matches_reference_on_random_windows() -> None:
    names = [
        "period_s", "mean_interval_s", "jitter_ratio", "shape", "low_s", "high_s",
        "missed_ratio", "outlier_ratio", "singles", "spread", "quality", "intervals",
    ]  # fmt: skip
    for times in random_windows(300):
        got = fit(times)
        want = ref.fit_window(times)
        for slot, name in zip(Fit, names, strict=False):
            assert got[slot] == pytest.approx(float(getattr(want, name)), rel=1e-9, abs=1e-9), (
                name, times.tolist())  # fmt: skip
        assert got[Fit.RECENT] == float(want.recent)


def test_perfect_beacon_with_five_intervals() -> None:
    f = fit(np.arange(6) * 14_400.0)
    assert f[Fit.PERIOD_S] == 14_400.0
    assert f[Fit.JITTER_SHAPE] == Shape.NONE
    assert f[Fit.SPREAD] == 0.0
    assert f[Fit.MISSED_RATIO] == 0.0


@pytest.mark.parametrize("shape", list(SHAPES))
@pytest.mark.parametrize("sleep_s", [60.0, 300.0, 3600.0])
def test_recovers_sleep_and_shape(shape: str, sleep_s: float) -> None:
    rng = np.random.default_rng(int(sleep_s) + len(shape))
    ok_period = ok_shape = total = 0
    jitter_errors = []
    for jitter in (0.1, 0.2, 0.3, 0.5):
        for events in (16, 24, 32):
            for _ in range(8):
                f = fit(beacon(rng, shape, sleep_s, jitter, events))
                total += 1
                ok_period += abs(f[Fit.PERIOD_S] / sleep_s - 1) <= 0.02
                if f[Fit.JITTER_SHAPE] == SHAPES[shape]:
                    ok_shape += 1
                    jitter_errors.append(abs(f[Fit.JITTER_RATIO] - jitter))
    assert np.median(jitter_errors) < 0.03
    # Measured ~0.85-0.95: the shape is a roundness guess from edges estimated from 15-31
    # intervals (see the periodicity docstring).
    assert ok_period / total >= 0.75
    assert ok_shape / total >= 0.75


def test_no_jitter_is_shape_none_and_exact() -> None:
    rng = np.random.default_rng(3)
    for sleep_s in (5.0, 60.0, 300.0, 3600.0):
        f = fit(beacon(rng, "subtractive", sleep_s, 0.0, 20))
        assert f[Fit.JITTER_SHAPE] == Shape.NONE
        assert f[Fit.PERIOD_S] == pytest.approx(sleep_s, rel=1e-4)


@pytest.mark.parametrize("missed", [0.1, 0.2, 0.3])
def test_missed_ratio_close_to_truth(missed: float) -> None:
    rng = np.random.default_rng(int(missed * 100))
    got = [fit(beacon(rng, "subtractive", 60.0, 0.2, 32, missed))[Fit.MISSED_RATIO]
           for _ in range(100)]  # fmt: skip
    assert np.mean(got) == pytest.approx(missed, abs=0.05)


def test_wide_subtractive_jitter_keeps_the_whole_support() -> None:
    rng = np.random.default_rng(11)
    f = np.array([fit(beacon(rng, "subtractive", 60.0, 0.75, 32)) for _ in range(100)])
    assert np.median(f[:, Fit.HIGH_S]) == pytest.approx(60, rel=0.03)
    assert np.median(f[:, Fit.LOW_S]) == pytest.approx(15, abs=2)
    assert np.median(f[:, Fit.MISSED_RATIO]) < 0.05


def test_stray_connections_are_outliers() -> None:
    t = np.arange(30) * 60.0
    t = np.sort(np.concatenate([t, [605.0, 1210.0]]))
    f = fit(t)
    assert f[Fit.PERIOD_S] == 60.0
    assert f[Fit.OUTLIER_RATIO] == pytest.approx(4 / 31)


@pytest.mark.parametrize(("first_s", "then_s"), [(60.0, 300.0), (300.0, 60.0), (60.0, 90.0)])
def test_regime_change_picks_the_recent_sleep(first_s: float, then_s: float) -> None:
    rng = np.random.default_rng(5)
    head = beacon(rng, "subtractive", first_s, 0.1, 16)
    tail = head[-1] + beacon(rng, "subtractive", then_s, 0.1, 17)[1:]
    f = fit(np.concatenate([head, tail]))
    assert f[Fit.RECENT] == 1.0
    assert f[Fit.PERIOD_S] == pytest.approx(then_s, rel=0.02)


def test_stable_beacon_keeps_the_whole_window() -> None:
    rng = np.random.default_rng(6)
    recent = [fit(beacon(rng, "subtractive", 60.0, 0.3, 32))[Fit.RECENT] for _ in range(100)]
    assert np.mean(recent) < 0.1
