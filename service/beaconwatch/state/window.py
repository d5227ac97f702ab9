"""A pair's scoring window, gathered from its rings and scored (numba): the ``score`` step
of the ingest kernel (`state.ingest`, which also shows the window), and `score_rows`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import F64, U16, U32
from beaconwatch.scoring.bursts import burst_gap_s, merge_bursts
from beaconwatch.scoring.window_score import Param, score_window_paired
from beaconwatch.state.size_codec import decode_size


@njit(cache=True, nogil=True)
def gather_window(
    ring_t: U32, ring_b: U16, row: int, valid: int, oldest: int, cutoff_rel: int,
    long_cutoff_rel: int, times_s: F64, sizes: F64,
) -> tuple[int, int, int]:  # fmt: skip
    """Copy the ring entries inside the window into ``times_s``/``sizes``, sorted by time.

    The window is the entries at or after ``cutoff_rel``; when those are fewer than half the
    ring, older entries at or after ``long_cutoff_rel`` are added, newest first, up to half the
    ring. Returns (entries, first_rel_ms, last_rel_ms). Reading the ring from its oldest slot
    gives a nearly sorted sequence (only late arrivals are out of place), so insertion sort is
    O(n).
    """
    history = ring_t.shape[1]
    m = 0
    recent = 0
    for j in range(valid):
        slot = (oldest + j) % history
        rel = ring_t[row, slot]
        if np.int64(rel) < long_cutoff_rel:
            continue
        if np.int64(rel) >= cutoff_rel:
            recent += 1
        t = rel / 1000.0
        b = decode_size(ring_b[row, slot])
        k = m
        while k > 0 and times_s[k - 1] > t:
            times_s[k] = times_s[k - 1]
            sizes[k] = sizes[k - 1]
            k -= 1
        times_s[k] = t
        sizes[k] = b
        m += 1
    keep = max(recent, min(m, history // 2))
    drop = m - keep
    if drop > 0:
        times_s[:keep] = times_s[drop:m]
        sizes[:keep] = sizes[drop:m]
        m = keep
    if m == 0:
        return 0, 0, 0
    # Times are whole ms, exactly representable: adding 0.5 and truncating rounds them back.
    return m, int(np.int64(times_s[0] * 1000.0 + 0.5)), int(np.int64(times_s[m - 1] * 1000.0 + 0.5))


@njit(cache=True, nogil=True)
def score_row(
    ring_t: U32, ring_b: U16, count: U32, row: int, cutoff_rel: int, long_cutoff_rel: int,
    score_params: F64, null_tables: F64, stats: F64, window_t: F64, window_b: F64, work: F64,
    scratch: F64, lean: bool, sampling_rate: int = 1,
) -> tuple[int, int, float]:  # fmt: skip
    """Score the row's window (see `gather_window`) into ``stats`` (``lean``: see
    `score_window`), its connections grouped into check-ins when they come in bursts
    (`scoring.bursts`).

    Returns the window's (first, last) start, relative to the epoch, and the connections per
    check-in (1.0 when not grouped).
    """
    history = ring_t.shape[1]
    n = np.int64(count[row])
    valid = min(n, history)
    oldest = count[row] % history if n > history else 0
    m, first_rel, last_rel = gather_window(
        ring_t, ring_b, row, valid, oldest, cutoff_rel, long_cutoff_rel, window_t, window_b
    )
    if sampling_rate > 1:  # a sampled record's bytes times the rate estimate the connection's
        window_b[:m] *= sampling_rate
    per_check_in = 1.0
    gap_s = burst_gap_s(window_t, m, score_params[Param.BURST_GAP_S], scratch)
    if gap_s > 0.0:
        check_ins = merge_bursts(window_t, window_b, m, gap_s)
        per_check_in = m / check_ins
        m = check_ins
    score_window_paired(
        window_t[:m], window_b[:m], score_params, stats, work, null_tables[0], null_tables[1],
        lean,
    )  # fmt: skip
    return first_rel, last_rel, per_check_in
