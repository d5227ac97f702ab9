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

Retries on a fixed timer after irregular events (`retry_timer_s`): a resolver that gets no
answer tries again exactly 5 s later, each try a flow of its own (systemd-resolved), after
lookups that come as applications need them (Poisson). There is no jump: the gaps between
lookups fill the whole range down to the timer. Read connection by connection, half the gaps
are exactly 5 s and the fit found a 5 s "beacon" (2 of 20 runs of the hard case alerted).
The window is grouped at the timer g (gaps within g +/- max(1 %, 50 ms), g from
`TIMER_MIN_S` to ``max_gap_s``) when

* at least `MIN_SHARE` of the gaps are g, and at least `MIN_SHARE` are gaps between events,
  `TIMER_BETWEEN` g or longer (gaps of about one g, off by more than the tolerance, are a
  noisy timer's and count as neither),
* g-gaps come in runs of at most `TIMER_MAX_RUN` in a row (a few retries per event; a g-second
  beacon chains them), and
* fewer than half of the gaps between events are whole multiples of g, within
  `TIMER_MULTIPLE_TOL` g (a beacon with missed beats has 2g, 3g, ...; Poisson gaps are
  multiples by chance 20 % of the time).

The price: a C2 that checks in with bursts of up to `TIMER_MAX_RUN` + 1 connections on an
exact timer at irregular times is scored on the bursts' starts (irregular: no alert); with
regular bursts it still alerts at the burst cycle.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import F64

MIN_JUMP = 4.0
MIN_SHARE = 0.2
_TINY_GAP_S = 0.001  # connections in the same millisecond
TIMER_MIN_S = 1.0  # retry timers: TCP's initial RTO 1 s, resolvers 1-5 s
TIMER_MAX_RUN = 3  # g-gaps in a row at most: up to 4 tries of one event
TIMER_TOL_FRACTION = 0.01  # a timer gap is g within this fraction...
TIMER_TOL_MIN_S = 0.05  # ...or this (as `periodicity`'s re-fold)
TIMER_BETWEEN = 1.5  # gaps from this many g on are gaps between events (or missed beats)
# ...and whole multiples of g when within this fraction of g of one: a beacon's missed beats
# are (its noise grows only as sqrt(k)); of Poisson gaps, 20 % by chance.
TIMER_MULTIPLE_TOL = 0.1


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
    if best_gap > 0.0:
        return best_gap
    return retry_timer_s(times_s, m, max_gap_s, gaps)


@njit(cache=True, nogil=True)
def _timer_tol(g: float) -> float:
    return max(TIMER_TOL_FRACTION * g, TIMER_TOL_MIN_S)


@njit(cache=True, nogil=True)
def retry_timer_s(times_s: F64, m: int, max_gap_s: float, gaps: F64) -> float:
    """g + its tolerance when the first ``m`` (sorted) start times are retries on a fixed
    timer g after irregular events (module doc), else 0.0. ``gaps`` holds their ``m - 1``
    gaps sorted."""
    n = m - 1
    best_g, best_count = 0.0, 0
    for i in range(n):  # the likeliest timer: the gap value most gaps repeat (n <= the ring)
        g = gaps[i]
        if g < TIMER_MIN_S:
            continue
        if g > max_gap_s:
            break
        tol = _timer_tol(g)
        count = 0
        for j in range(n):
            if abs(gaps[j] - g) <= tol:
                count += 1
        if count > best_count:
            best_g, best_count = g, count
    if best_count == 0 or best_count < MIN_SHARE * n:
        return 0.0
    g = best_g
    tol = _timer_tol(g)
    run = longest = between = multiples = 0
    for j in range(n):
        d = times_s[j + 1] - times_s[j]
        if abs(d - g) <= tol:
            run += 1
            longest = max(longest, run)
            continue
        run = 0
        if d < TIMER_BETWEEN * g:  # about one beat, off by noise: neither timer nor event gap
            continue
        between += 1
        k = np.floor(d / g + 0.5)
        if abs(d - k * g) <= TIMER_MULTIPLE_TOL * g:
            multiples += 1
    if between < MIN_SHARE * n or longest > TIMER_MAX_RUN or 2 * multiples >= between:
        return 0.0
    return g + tol


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
