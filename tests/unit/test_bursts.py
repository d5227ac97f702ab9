"""Check-ins made of bursts (scoring/bursts.py): the kernels against obvious NumPy references,
and the detector on burst beacons that it read as noise before."""

from __future__ import annotations

import numpy as np
import pytest

from beaconwatch.config import Config, with_overrides
from beaconwatch.core.detector import Detector
from beaconwatch.scoring.bursts import burst_gap_s, merge_bursts
from tests.unit.flowgen import T0_MS, WALL_MS, FullRow, make_flows, poisson_rows
from tests.unit.naive import reference_gap, reference_merge


@pytest.mark.parametrize("seed", range(60))
def test_kernels_match_the_references(seed: int) -> None:
    rng = np.random.default_rng(seed)
    kind = seed % 3
    if kind == 0:  # bursts of 1-4 connections every 40-120 s
        starts = np.cumsum(rng.uniform(40, 120, 12))
        times = np.sort(np.concatenate([s + np.cumsum(rng.uniform(0, 10, rng.integers(1, 5)))
                                        for s in starts]))  # fmt: skip
    elif kind == 1:  # plain jittered beacon, some beats missed
        times = np.cumsum(rng.choice([1, 1, 1, 2, 3], 30) * rng.uniform(50, 70, 30))
    elif seed % 2:  # heavy-tailed human traffic
        times = np.cumsum(rng.pareto(1.2, 40) * 5)
    else:  # retries on a fixed timer after Poisson events, or a fixed-timer beacon
        times = retries(rng, 5.0) if seed % 4 else np.cumsum(rng.choice([1, 1, 2, 3], 30) * 5.0)
    times = np.round(times, 3)
    max_gap = float(rng.choice([0.0, 5.0, 30.0]))
    got = burst_gap_s(times.copy(), len(times), max_gap, np.empty(len(times)))
    assert got == reference_gap(times, max_gap)
    sizes = rng.integers(100, 1000, len(times)).astype(np.float64)
    t, b = times.copy(), sizes.copy()
    k = merge_bursts(t, b, len(times), got)
    want_t, want_b = reference_merge(times, sizes, got)
    assert t[:k].tolist() == want_t and b[:k].tolist() == want_b


def retries(rng: np.random.Generator, timer_s: float, events: int = 14) -> np.ndarray:
    """Events at Poisson times (mean 40 s), each tried 1-3 times ``timer_s`` apart."""
    starts = np.cumsum(rng.exponential(40.0, events))
    tries = [s + timer_s * np.arange(rng.integers(1, 4)) for s in starts]
    return np.round(np.sort(np.concatenate(tries)), 3)


def test_retries_on_a_fixed_timer_after_irregular_events_are_grouped() -> None:
    rng = np.random.default_rng(5)
    gaps = [burst_gap_s(t, len(t), 30.0, np.empty(len(t))) for t in
            (retries(rng, 5.0) for _ in range(50))]  # fmt: skip
    assert sum(abs(g - 5.05) < 0.01 for g in gaps) >= 40  # the 5 s timer (+ 50 ms tolerance)
    # A 5 s beacon chains the timer gaps, and its other gaps are multiples: not grouped.
    for missed in (0.1, 0.3, 0.5):
        k = np.where(rng.random(31) < missed, 2, 1) + (rng.random(31) < missed / 3)
        beacon = np.cumsum(np.concatenate([[0.0], 5.0 * k + rng.uniform(-0.02, 0.02, 31)]))
        assert burst_gap_s(beacon, len(beacon), 30.0, np.empty(len(beacon))) == 0.0
    # Exact-timer beacons (no jitter; request time and handler noise as the evaluation's
    # Meterpreter-like polling) with missed beats: their gaps between check-ins are multiples.
    grouped = windows = 0
    for period, noise in ((10.0, 0.15), (5.0, 0.0), (30.0, 0.0)):
        for missed in (0.0, 0.1, 0.3):
            for _ in range(100):
                t = np.cumsum(period + rng.normal(0, noise, 200) + rng.exponential(0.04, 200))
                t = np.round(t[rng.random(200) >= missed], 3)
                for n in (8, 12, 32):
                    windows += 1
                    grouped += burst_gap_s(t[:n], n, 30.0, np.empty(n)) > 0
    assert grouped <= 0.01 * windows  # (the first rule grouped them: Meterpreter's delay 4x)
    # Below a second it is no retry timer (parallel connections have their own rule).
    fast = retries(rng, 0.5)
    assert abs(burst_gap_s(fast, len(fast), 30.0, np.empty(len(fast))) - 0.55) > 0.01


def test_what_is_not_made_of_bursts_stays_as_it_is() -> None:
    beats = np.cumsum([60.0, 61, 59, 120, 60, 180, 61, 60, 59, 60, 120, 60])  # missed beats
    assert burst_gap_s(beats, len(beats), 30.0, np.empty(len(beats))) == 0.0
    fast = np.cumsum([1.0] * 40 + [3600.0] + [1.0] * 5)  # a 1 s beacon and one outage
    assert burst_gap_s(fast, len(fast), 30.0, np.empty(len(fast))) == 0.0
    two_modes = np.cumsum([5.0, 60.0] * 10)  # a C2 alternating 5 s and 60 s sleeps
    assert (
        burst_gap_s(two_modes, len(two_modes), 30.0, np.empty(len(two_modes))) == 5.0
    )  # (read as 65 s check-ins)


def syn_retry_beacon(period_s: float, cycles: int, seed: int) -> list[FullRow]:
    """Each check-in unanswered SYNs on one 5-tuple at +0/+3/+9/+21 s (Windows), one record
    each; the next check-in on the next source port."""
    rng = np.random.default_rng(seed)
    rows: list[FullRow] = []
    t = float(T0_MS)
    for c in range(cycles):
        t += period_s * 1000 * rng.uniform(0.95, 1.05)
        for offset_s in (0, 3, 9, 21)[: int(rng.integers(2, 5))]:
            start = int(t + offset_s * 1000 + rng.uniform(0, 50))
            rows.append((start, "10.0.0.9", "203.0.113.80", 443, 6, 66, 50_000 + c, start))
    return rows


def parallel_beacon(period_s: float, cycles: int, seed: int) -> list[FullRow]:
    """Each check-in 2-3 connections opened together (a client with a connection pool)."""
    rng = np.random.default_rng(seed)
    rows: list[FullRow] = []
    t = float(T0_MS)
    for c in range(cycles):
        t += period_s * 1000 * rng.uniform(0.9, 1.1)
        for p in range(int(rng.integers(2, 4))):
            start = int(t + rng.uniform(0, 400))
            rows.append((start, "10.0.0.10", "203.0.113.81", 443, 6, 900 + int(rng.integers(0, 40)),
                         40_000 + 3 * c + p, start + 300))  # fmt: skip
    return rows


@pytest.mark.parametrize("make", [syn_retry_beacon, parallel_beacon])
def test_burst_beacons_are_alerted_with_their_cycle(make) -> None:  # type: ignore[no-untyped-def]
    # Seen on real traffic: an 80 s cycle of SYN retries read as "9 s, 56 % missed", never
    # alerted. Now the check-ins are the bursts (scored connection by connection, with
    # scoring.burst_gap_s = 0, 1 of these 5 SYN-retry and 0 of the 5 parallel beacons alert).
    alerted = 0
    for seed in range(5):
        rows = make(80, 60, seed)
        rows += [(*r, 33_000 + i, r[0]) for i, r in enumerate(  # type: ignore[misc]
            poisson_rows("10.0.1.1", ["198.51.100.1", "198.51.100.2"], mean_gap_s=40, count=120,
                         seed=seed))]  # fmt: skip
        rows.sort()
        alerts = run(Config(), rows)
        mine = [a for a in alerts if a.dst_ip.startswith("203.0.113.8")]
        assert all(a.src_ip != "10.0.1.1" for a in alerts)
        if mine:
            alerted += 1
            assert 72 <= mine[-1].stats.mean_interval_s <= 88
            assert mine[-1].stats.connections_per_check_in > 1.5
    assert alerted == 5
    off = with_overrides(Config(), scoring={"burst_gap_s": 0})
    rows = make(80, 60, 1)
    assert not [a for a in run(off, rows) if a.dst_ip.startswith("203.0.113.8")]


def run(config: Config, rows: list[FullRow]) -> list:  # type: ignore[type-arg]
    det = Detector(config, wall_clock_ms=lambda: WALL_MS)
    alerts = []
    for i in range(0, len(rows), 40):
        alerts += det.process(make_flows(rows[i : i + 40])).alerts
    return alerts
