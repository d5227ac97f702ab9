"""The sleep range an alert describes, from its nominal period, jitter ratio and shape.

The three jitter shapes cannot be told apart from intervals (each is uniform on [a, b]), so
"every 10 s, -20 %" and "every 8 s, +25 %" describe the same check-ins. Alert updates compare
described ranges, not anchors (`state.ingest`). Kept out of `periodicity`, whose source is
part of the shipped null table's fingerprint.
"""

from __future__ import annotations

from numba import njit

from beaconwatch.scoring.periodicity import SHAPE_ADDITIVE, SHAPE_SUBTRACTIVE, SHAPE_SYMMETRIC


@njit(cache=True, nogil=True)
def described_range(period_s: float, jitter: float, shape: int) -> tuple[float, float]:
    """[low, high] of the sleep: subtractive "S, -j" is [S(1 - j), S], additive [S, S(1 + j)],
    symmetric [S(1 - j), S(1 + j)]; no shape (under 3 % jitter) S +/- j/2."""
    if shape == SHAPE_SUBTRACTIVE:
        return period_s * (1.0 - jitter), period_s
    if shape == SHAPE_ADDITIVE:
        return period_s, period_s * (1.0 + jitter)
    if shape == SHAPE_SYMMETRIC:
        return period_s * (1.0 - jitter), period_s * (1.0 + jitter)
    return period_s * (1.0 - 0.5 * jitter), period_s * (1.0 + 0.5 * jitter)
