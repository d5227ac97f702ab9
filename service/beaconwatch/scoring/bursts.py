"""Check-ins made of bursts: several connections per check-in, grouped before scoring.

A check-in is often more than one connection: unanswered SYN retransmissions on one 5-tuple at
+0/+3/+9/+21 s (Windows; Linux doubles from 1 s), or 2-3 parallel connections. Scored one by
one, an 80 s cycle of 4-connection bursts reads as "9 s, 56 % missed" and never alerts.

The gaps between a pair's connection starts then fall in two groups: short ones inside the
bursts, long ones between them. Sorted, they show one jump between consecutive gaps far larger
than the others. The window is grouped when

* that jump is a factor of at least `MIN_JUMP` (a beacon's jitter or a missed beat gives 2-3:
  60 s, 60 s, 120 s, 180 s),
* the short gaps are at most ``max_gap_s`` (``scoring.burst_gap_s``; retransmissions, parallel
  connections), and
* each side holds at least `MIN_SHARE` of the gaps (a 1 s beacon with one hour-long outage has
  one long gap among dozens: not bursts).

Connections starting within the short gaps of the previous one are then one check-in: its
start is the first connection's, its bytes the sum. A window that does not qualify is scored
connection by connection, as before.
"""

from __future__ import annotations

from numba import njit

from beaconwatch.domain.dtypes import F64

MIN_JUMP = 4.0
MIN_SHARE = 0.2
_TINY_GAP_S = 0.001  # connections in the same millisecond


@njit(cache=True, nogil=True)
def burst_gap_s(times_s: F64, m: int, max_gap_s: float, scratch: F64) -> float:
    """The longest gap inside a burst, for the first ``m`` (sorted) start times; 0.0 when the
    window is not made of bursts. ``scratch`` holds at least ``m`` values (no allocation:
    every scoring of every pair asks)."""
    if m < 4 or max_gap_s <= 0.0:
        return 0.0
    n = m - 1
    short = 0
    for j in range(n):
        if times_s[j + 1] - times_s[j] <= max_gap_s:
            short += 1
    if short < MIN_SHARE * n:  # most windows: too few gaps short enough for bursts
        return 0.0
    gaps = scratch[:n]
    for j in range(n):  # insertion sort: n <= the ring's length
        gap = times_s[j + 1] - times_s[j]
        k = j
        while k > 0 and gaps[k - 1] > gap:
            gaps[k] = gaps[k - 1]
            k -= 1
        gaps[k] = gap
    best_jump, best_gap = 0.0, 0.0
    for i in range(1, n):
        short = gaps[i - 1]
        if short > max_gap_s:
            break
        if i < MIN_SHARE * n or n - i < MIN_SHARE * n:
            continue
        jump = gaps[i] / max(short, _TINY_GAP_S)
        if jump >= MIN_JUMP and jump > best_jump:
            best_jump, best_gap = jump, short
    return best_gap


@njit(cache=True, nogil=True)
def merge_bursts(times_s: F64, sizes: F64, m: int, gap_s: float) -> int:
    """Merge, in place, each connection starting at most ``gap_s`` after the previous one into
    the check-in it belongs to (the first connection's start, the bytes summed); returns the
    number of check-ins."""
    if m == 0:
        return 0
    k = 0
    for j in range(1, m):
        if times_s[j] - times_s[j - 1] <= gap_s:
            sizes[k] += sizes[j]
        else:
            k += 1
            times_s[k] = times_s[j]
            sizes[k] = sizes[j]
    return k + 1
