"""The labelled benchmark generator: labels, jitter shapes, missed check-ins, exporter artefacts."""

from __future__ import annotations

import numpy as np
import pytest
from evaluation import background as bg
from evaluation.scenarios import ScenarioSpec, build_scenario
from evaluation.truth import CATEGORIES, FlowColumns, Kind, assemble

from beaconwatch.scoring.periodicity import Shape
from beaconwatch.simulate.implant import Schedule, checkin_times_ms, sleeps_s


@pytest.fixture(scope="module")
def quick():  # type: ignore[no-untyped-def]
    return build_scenario(ScenarioSpec.quick(seed=3))


@pytest.mark.parametrize(
    ("shape", "low", "high"),
    [
        (Shape.SUBTRACTIVE, 0.5 * 60, 60.0),  # Cobalt Strike: [S(1-j), S]
        (Shape.ADDITIVE, 60.0, 1.5 * 60),  # Sliver: S + U[0, jS)
        (Shape.SYMMETRIC, 0.5 * 60, 1.5 * 60),  # S(1 +/- j)
    ],
)
def test_sleep_shapes_cover_their_interval(shape: Shape, low: float, high: float) -> None:
    u = np.random.default_rng(0).random(20_000)
    s = sleeps_s(shape, 60, 0.5, u)
    assert s.min() >= low and s.max() <= high
    assert s.min() < low + 0.5 and s.max() > high - 0.5  # the whole interval is used
    assert abs(np.median(s) - (low + high) / 2) < 1.0  # uniform


def test_missed_ratio_drops_that_share_of_checkins() -> None:
    rng = np.random.default_rng(1)
    full = checkin_times_ms(rng, Schedule(Shape.SYMMETRIC, 10, 0.0, 0.0), 0, 86_400_000)
    missed = checkin_times_ms(rng, Schedule(Shape.SYMMETRIC, 10, 0.0, 0.3), 0, 86_400_000)
    assert 0.67 < missed.size / full.size < 0.73
    gaps = np.diff(missed) / 1000
    assert np.isclose(np.median(gaps[gaps < 15]), 10.0, atol=0.1)  # misses keep the schedule


def test_sleep_change_switches_period_half_way() -> None:
    rng = np.random.default_rng(2)
    t = checkin_times_ms(rng, Schedule(Shape.SYMMETRIC, 60, 0.0, 0.0, period2_s=300), 0, 36_000_000)
    gaps = np.diff(t) / 1000
    first, second = t[1:] < 18_000_000 - 300_000, t[1:] > 18_000_000 + 300_000
    assert np.allclose(gaps[first], 60, atol=0.5) and np.allclose(gaps[second], 300, atol=0.5)


def test_flows_are_time_ordered_and_pairs_labelled(quick) -> None:  # type: ignore[no-untyped-def]
    f = quick.flows
    assert np.all(np.diff(f.start_ms) >= 0)
    assert f.start_ms.min() >= quick.start_ms and f.start_ms.max() < quick.end_ms
    # Every planted implant owns exactly one beacon pair with its check-ins.
    index = quick.pair_index()
    for b in quick.beacons:
        if b.checkins == 0:
            continue
        pid = index[(b.src, b.dst, b.dst_port, b.proto)]
        assert quick.pair_kind[pid] == Kind.BEACON and quick.pair_beacon[pid] == b.index
        expected = b.checkins * (2 if b.variant == "duplicated" else 1)
        assert quick.pair_flows[pid] == expected
    assert np.count_nonzero(quick.pair_kind == Kind.BEACON) == sum(
        b.checkins > 0 for b in quick.beacons
    )
    assert np.count_nonzero(quick.pair_kind == Kind.BENIGN_PERIODIC) == len(bg.IOT_PERIODS_S)
    # Infected hosts keep their benign traffic.
    infected = {b.src for b in quick.beacons}
    benign_src = set(quick.pair_src[quick.pair_kind == Kind.BENIGN].tolist())
    assert infected <= benign_src


def test_reverse_records_join_the_internal_hosts_pair(quick) -> None:  # type: ignore[no-untyped-def]
    assert bool(np.all(quick.pair_src >> 24 == 10))  # every pair starts inside 10/8
    rev = CATEGORIES.index("reverse_record")
    f = quick.flows
    src = (f.src_lo & np.uint64(0xFFFF_FFFF)).astype(np.uint32)
    external_src = src >> 24 != 10
    assert external_src.any()
    # A reverse record of an outbound flow lands in the pair of the flow it answers.
    outbound = quick.pair_dst >> 24 != 10
    assert not np.any(quick.pair_category[outbound] == rev)


def test_active_timeout_splits_are_back_to_back() -> None:
    rng = np.random.default_rng(4)
    lay = bg.Layout(
        bg.hosts_ips(40),
        0,
        2 * bg.DAY_MS,
        np.array([1], np.uint32),
        np.array([2], np.uint32),
        np.array([3 << 24], np.uint32),
    )
    cols = FlowColumns.new()
    bg.long_sessions(rng, lay, cols)
    sc = assemble(cols, [], 80.0, 0, 2 * bg.DAY_MS)
    f = sc.flows
    assert len(f) > 0
    for pid in range(sc.n_pairs):
        idx = np.flatnonzero(sc.flow_pair == pid)
        sport = f.src_port[idx]
        for port in np.unique(sport):  # one session = one 5-tuple
            s = idx[sport == port]
            starts, ends = f.start_ms[s], f.end_ms[s]
            day = starts // bg.DAY_MS
            for d in np.unique(day):
                ds, de = starts[day == d], ends[day == d]
                assert np.all(np.diff(ds) == 1_800_000)
                assert np.all(ds[1:] == de[:-1])


def test_generator_is_deterministic_and_fast() -> None:
    import time

    t0 = time.perf_counter()
    a = build_scenario(ScenarioSpec.quick(seed=5))
    assert time.perf_counter() - t0 < 5
    b = build_scenario(ScenarioSpec.quick(seed=5))
    assert np.array_equal(a.flows.start_ms, b.flows.start_ms)
    assert np.array_equal(a.pair_kind, b.pair_kind)
