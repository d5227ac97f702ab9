"""What one ingest kernel call counted, as one named record instead of slots of a vector.

A NumPy structured array of one element: the kernel adds to its fields in place
(``counters[0]["accepted"] += 1``, compiled or under NUMBA_DISABLE_JIT; numba reads and
writes a record field at a fixed offset, as cheaply as a vector slot), and the core reads
them by name.
"""

from __future__ import annotations

import numpy as np

from beaconwatch.domain.dtypes import AnyArray

KERNEL_COUNTERS = np.dtype(
    [
        ("accepted", np.int64),  # flows accepted (not too late, not too far in the future)
        ("new_pairs", np.int64),
        ("evicted_capacity", np.int64),  # pairs evicted for room
        ("evicted_established", np.int64),  # of those, pairs with two connections or more
        ("scored", np.int64),
        ("alerts", np.int64),  # rows of the call's `AlertRows` filled
        ("duplicates", np.int64),
        ("continuations", np.int64),
    ]
)
# Counted again by the prefix pass (`core.detector`): its per-flow counters repeat the exact
# pass's, these do not.
PREFIX_PASS_COUNTERS = ("evicted_capacity", "evicted_established", "scored")


def new_counters() -> AnyArray:
    """One zeroed counter record (an array of one, so the kernel writes into it)."""
    return np.zeros(1, dtype=KERNEL_COUNTERS)
