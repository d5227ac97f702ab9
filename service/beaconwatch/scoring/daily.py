"""Gates for a window of three connections: a daily beacon in its first 72 h.

A 24 h beacon has 3 check-ins in the long window (72 h), 2 intervals: the exact spacing test
of `scoring.sparse` gives p = r for them (two intervals within 10 % of each other happen one
time in ten under Poisson arrivals), no evidence at the ~1e4 three-connection windows of
2,000 host-days. Timing alone cannot carry such a window; what a daily C2 check-in has that
most benign three-connection pairs lack is several things at once, each a gate here:

- ``GATE_LONG``: both intervals at least ``min_interval_s``. A pair with a shorter rhythm has
  4 or more connections within the long window and gets the tests of 4 and more instead, so
  this only looks at pairs that cannot show more (default 18 h = long window / 4).
- ``GATE_REGULAR``: the intervals' largest relative deviation from their mean,
  r = |d1 - d2| / (d1 + d2), at most ``max_deviation`` (10 % symmetric jitter: r <= 0.1).
- ``GATE_SIZES``: the three byte counts within a log-range of ``max_size_spread_ln`` (an
  implant's check-in is its own size plus padding), or with ``two_of_three`` any two of them
  (one check-in may carry tasking). Connections below ``min_bytes`` say nothing by size.

Destination rarity (prevalence: no other internal host) is the pair table's, not the window's,
and is applied by the caller. What these gates pass on the synthetic background and the real
captures is measured by `evaluation.daily_windows`; they are not a p-value.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import F64

GATE_LONG = 1
GATE_REGULAR = 2
GATE_SIZES = 4
ALL_GATES = GATE_LONG | GATE_REGULAR | GATE_SIZES
# The detector's size gate (rule sparse-beacon): two of three within 5 %, an implant's own
# check-in size plus its padding (one check-in may carry tasking); below 200 bytes (a SYN, an
# empty reply) no payload to compare.
SIZE_SPREAD_LN = 0.05
MIN_BYTES = 200.0


@njit(cache=True, nogil=True)
def relative_deviation(d1: float, d2: float) -> float:
    """r = max |d_i / mean - 1| of two intervals; 1.0 when they sum to nothing."""
    total = d1 + d2
    if not total > 0.0:
        return 1.0
    return abs(d1 - d2) / total


@njit(cache=True, nogil=True)
def _sizes_close(
    sizes: F64, max_spread_ln: float, min_bytes: float, two_of_three: bool
) -> bool:  # fmt: skip
    a, b, c = sizes[0], sizes[1], sizes[2]
    lo = min(a, min(b, c))
    if lo < min_bytes or lo <= 0.0:
        return False
    hi = max(a, max(b, c))
    mid = a + b + c - lo - hi
    if np.log(hi / lo) <= max_spread_ln:
        return True
    return bool(two_of_three and min(np.log(mid / lo), np.log(hi / mid)) <= max_spread_ln)


@njit(cache=True, nogil=True)
def three_connection_gates(
    times_s: F64, sizes: F64, min_interval_s: float, max_deviation: float,
    max_size_spread_ln: float, min_bytes: float, two_of_three: bool,
) -> int:  # fmt: skip
    """Bit mask of the gates a window of exactly three connections passes (0 otherwise).

    ``times_s`` sorted ascending; ``sizes`` the connections' byte counts in the same order."""
    if times_s.shape[0] != 3 or sizes.shape[0] != 3:
        return 0
    d1 = times_s[1] - times_s[0]
    d2 = times_s[2] - times_s[1]
    gates = 0
    if min(d1, d2) >= min_interval_s:
        gates |= GATE_LONG
    if relative_deviation(d1, d2) <= max_deviation:
        gates |= GATE_REGULAR
    if _sizes_close(sizes, max_size_spread_ln, min_bytes, two_of_three):
        gates |= GATE_SIZES
    return gates


@njit(cache=True, nogil=True)
def gates_of_windows(
    times_s: F64, sizes: F64, min_interval_s: float, max_deviation: float,
    max_size_spread_ln: float, min_bytes: float, two_of_three: bool,
) -> np.ndarray:  # fmt: skip
    """`three_connection_gates` of each row of (k, 3) ``times_s`` and ``sizes``."""
    out = np.zeros(times_s.shape[0], dtype=np.int64)
    for i in range(times_s.shape[0]):
        out[i] = three_connection_gates(
            times_s[i], sizes[i], min_interval_s, max_deviation, max_size_spread_ln, min_bytes,
            two_of_three,
        )  # fmt: skip
    return out
