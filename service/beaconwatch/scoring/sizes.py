"""Size regularity of a pair's connections, tolerant of payload padding.

C2 check-ins carry a near-constant payload, but frameworks pad it (e.g. 50-160 random bytes
per message) and data-jitter options pad up to a few hundred bytes. The MAD of the byte counts
is therefore compared with the median plus a fixed allowance, not with the median alone: a
300-byte check-in padded by 50-160 bytes has MAD ~27 B and stays regular, while browsing
(heavy-tailed sizes, MAD comparable to the median) does not.

    regularity = 1 - clip(MAD / (median + PAD_ALLOWANCE_B) / SIZE_TOLERANCE, 0, 1)
"""

from __future__ import annotations

from numba import njit

from beaconwatch.domain.dtypes import F64
from beaconwatch.scoring.kernels import mad_about, median_sorted, sort_small

PAD_ALLOWANCE_B = 256.0  # padding a regular check-in may carry (data jitter: a few hundred B)
SIZE_TOLERANCE = 0.5  # MAD / (median + allowance) at which regularity reaches 0


@njit(cache=True, nogil=True)
def size_regularity(sizes: F64, work: F64) -> tuple[float, float, float]:
    """(median bytes, MAD bytes, regularity in [0, 1]); ``work`` is (2, >= len(sizes)) scratch."""
    n = sizes.shape[0]
    if n == 0:
        return 0.0, 0.0, 0.0
    s = work[0, :n]
    s[:] = sizes
    sort_small(s)
    med = median_sorted(s)
    mad = mad_about(sizes, med, work[1])
    ratio = mad / (max(med, 0.0) + PAD_ALLOWANCE_B) / SIZE_TOLERANCE
    return med, mad, 1.0 - min(1.0, max(0.0, ratio))
