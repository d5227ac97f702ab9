"""scoring/daily.py: the gates of a three-connection window, against their NumPy twin and on
the windows they are meant to tell apart."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from beaconwatch.scoring.daily import (
    ALL_GATES,
    GATE_LONG,
    GATE_REGULAR,
    GATE_SIZES,
    gates_of_windows,
    relative_deviation,
    three_connection_gates,
)
from tests.unit import naive

HOUR_S = 3_600.0
ARGS = (18 * HOUR_S, 0.1, 0.05, 200.0)


def gates(times: Sequence[float], sizes: Sequence[float], two_of_three: bool = False) -> int:
    return int(three_connection_gates(np.array(times), np.array(sizes), *ARGS, two_of_three))


def test_a_daily_check_in_passes_every_gate() -> None:
    # 24 h sleep, 10 % jitter (22.5 h, 25.7 h), a 2 kB check-in plus padding.
    t = [0.0, 22.5 * HOUR_S, 48.2 * HOUR_S]
    assert gates(t, [2_010, 2_060, 1_998]) == ALL_GATES


def test_each_gate_fails_on_its_own_evidence() -> None:
    sizes = [2_010, 2_060, 1_998]
    assert gates([0.0, 10 * HOUR_S, 20 * HOUR_S], sizes) == GATE_REGULAR | GATE_SIZES
    assert gates([0.0, 20 * HOUR_S, 48 * HOUR_S], sizes) == GATE_LONG | GATE_SIZES  # r = 0.17
    t = [0.0, 24 * HOUR_S, 48 * HOUR_S]
    assert gates(t, [2_000, 9_000, 2_010]) == GATE_LONG | GATE_REGULAR
    assert gates(t, [60, 60, 60]) == GATE_LONG | GATE_REGULAR  # below min_bytes: no payload


def test_two_of_three_sizes_allow_one_tasked_check_in() -> None:
    t = [0.0, 24 * HOUR_S, 48 * HOUR_S]
    assert gates(t, [2_000, 40_000, 2_030], two_of_three=True) == ALL_GATES
    assert gates(t, [2_000, 40_000, 9_000], two_of_three=True) == GATE_LONG | GATE_REGULAR
    assert gates(t, [2_000, 40_000, 2_030]) == GATE_LONG | GATE_REGULAR


def test_not_three_connections_passes_nothing() -> None:
    t = np.array([0.0, 24 * HOUR_S, 48 * HOUR_S, 72 * HOUR_S])
    assert three_connection_gates(t, np.full(4, 2_000.0), *ARGS, False) == 0


def test_relative_deviation_is_the_spacing_statistic() -> None:
    assert relative_deviation(1.1, 0.9) == pytest.approx(0.1)
    assert relative_deviation(0.0, 0.0) == 1.0


@pytest.mark.parametrize("two_of_three", [False, True])
def test_gates_match_the_reference(two_of_three: bool) -> None:
    rng = np.random.default_rng(14)
    k = 3_000
    times = np.cumsum(rng.exponential(20 * HOUR_S, (k, 3)), axis=1)
    sizes = rng.choice([60.0, 2_000.0], (k, 3)) * np.exp(rng.normal(0, 0.05, (k, 3)))
    got = gates_of_windows(times, sizes, *ARGS, two_of_three)
    want = [naive.three_connection_gates(t, s, *ARGS, two_of_three)
            for t, s in zip(times, sizes, strict=True)]  # fmt: skip
    np.testing.assert_array_equal(got, want)
    assert len(set(got.tolist())) == 8  # every combination of gates occurs
