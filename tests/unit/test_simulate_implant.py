"""The one implant timing model: the demo's implants and the evaluation grid sleep alike."""

from __future__ import annotations

import random

import numpy as np
import pytest

from beaconwatch.scoring.periodicity import Shape
from beaconwatch.simulate.implant import (
    POLLING,
    Schedule,
    checkin_times_ms,
    interval_bounds_s,
    sleeps_s,
)
from beaconwatch.simulate.model import PlantedBeacon
from beaconwatch.simulate.profiles import BeaconProfile

SHAPES = (Shape.SUBTRACTIVE, Shape.ADDITIVE, Shape.SYMMETRIC, POLLING)


@pytest.mark.parametrize("shape", SHAPES)
def test_one_sleep_and_many_sleeps_agree(shape: Shape) -> None:
    u = np.random.default_rng(4).random(1_000)
    many = sleeps_s(shape, 60, 0.3, u)
    one = np.array([sleeps_s(shape, 60, 0.3, float(x)) for x in u])
    assert np.array_equal(many, one)  # bit for bit: scalar and vector paths are one formula
    lo, hi = interval_bounds_s(shape, 60, 0.3)
    assert lo <= many.min() and many.max() <= hi
    assert many.min() < lo + 0.5 and many.max() > hi - 0.5


@pytest.mark.parametrize("shape", SHAPES[:3])
def test_the_demo_implant_draws_from_the_shared_model(shape: Shape) -> None:
    beacon = PlantedBeacon("10.0.0.9", "203.0.113.9", 443, "TCP", 100.0, 0.3, shape, 500)
    profile = BeaconProfile(seed=5, start_ms=0, beacon=beacon)
    mirror = random.Random(5)
    mirror.uniform(0, beacon.period_s)  # the profile's random phase
    for _ in range(200):
        assert profile.sleep_s() == sleeps_s(shape, 100.0, 0.3, mirror.random())
    assert beacon.interval_bounds_s() == interval_bounds_s(shape, 100.0, 0.3)


def test_polling_is_a_fixed_timer_plus_network_noise() -> None:
    rng = np.random.default_rng(7)
    t = checkin_times_ms(rng, Schedule(POLLING, 10, 0.5, 0.0), 0, 3_600_000)
    gaps_s = np.diff(t) / 1000
    # The jitter fraction does not apply to a fixed timer: 10 s + handling noise + rtt only.
    assert float(np.std(gaps_s)) < 0.3
    assert abs(float(np.median(gaps_s)) - 10.04) < 0.05
