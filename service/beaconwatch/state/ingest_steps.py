"""The ingest kernel's per-flow steps (numba), in the order `state.ingest` runs them.

Each takes scalars and the few columns it reads or writes, never the table tuple: numba
increfs every array it reads out of a tuple, per call, and the kernel calls these per flow
(handing them the table cost 25-48 % of throughput in an earlier attempt). Small enough for
LLVM to inline into the loop.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from beaconwatch.state.kernel_params import Limits

# Event-time verdicts, the kernel's ``status`` per flow.
ACCEPTED = 0
TOO_LATE = 1
TOO_FAR_FUTURE = 2
# A start beyond what 32-bit ring times after the partition's epoch can hold (~46 days after
# its watermark): only a file of old data can hold one, since live flows are checked against
# the wall clock. Rejected as too far in the future rather than stored with a clipped time.
BEYOND_RING = 3

U32_MAX = np.uint64(0xFFFF_FFFF)
NEVER_MS = np.iinfo(np.int64).min // 2  # as `pair_table.NEVER_MS`: no alert yet

# `due_for_scoring`'s answers.
NOT_DUE = 0
DUE = 1
DUE_PERIOD_CHECK = 2  # due for an alerted pair's period check (see `state.ingest`)


@njit(cache=True, nogil=True)
def event_time_verdict(
    start_ms: int, end_ms: int, oldest_export_ms: int, epoch_ms: int, max_start_ms: int
) -> int:
    """ACCEPTED, or why a flow is rejected. Too late: it ended (could last have been
    exported) more than the allowed lateness before the watermark (``oldest_export_ms``), or
    it starts before the epoch, where a start time cannot be stored (only data older than a
    whole window before the first batch of another partition gets there)."""
    if max(start_ms, end_ms) < oldest_export_ms or start_ms < epoch_ms:
        return TOO_LATE
    if start_ms > max_start_ms:
        return TOO_FAR_FUTURE
    if start_ms - epoch_ms >= np.int64(U32_MAX):
        return BEYOND_RING
    return ACCEPTED


@njit(cache=True, nogil=True)
def due_for_scoring(
    connections: int, t: int, first_seen_ms: int, alert_ms: int, scored_count: int,
    scored_ms: int, refine_at: int, limits: Limits,
) -> int:  # fmt: skip
    """Whether the pair is due for scoring at its new connection (at ``t``, making
    ``connections``): NOT_DUE, DUE or DUE_PERIOD_CHECK."""
    if connections < limits.min_events and not _slow_and_enough(
        connections, t - first_seen_ms, limits
    ):
        return NOT_DUE
    # An alert from a part-filled ring (as few as min_events connections) reads the
    # sleep from few intervals. Its period is checked again each time the pair's
    # connections double, until the ring is full: a described sleep range that moved is
    # an update even within the cooldown (at most log2(history / min_events) checks).
    if refine_at > 0 and connections >= refine_at:
        return DUE_PERIOD_CHECK
    # Otherwise no alert can follow within the cooldown after an alert, so the pair is not
    # scored: a beacon that has alerted costs no scoring until its cooldown is over.
    if alert_ms != NEVER_MS and t - alert_ms < limits.cooldown_ms:
        return NOT_DUE
    if (
        connections - scored_count < limits.rescore_every
        and t - scored_ms < limits.rescore_interval_ms
    ):
        return NOT_DUE
    return DUE


@njit(cache=True, nogil=True)
def _slow_and_enough(connections: int, seen_for_ms: int, limits: Limits) -> bool:
    """A slow pair with enough connections to score before min_events: at least
    min_events_slow of them, at most one per slow_interval_s on average since the first."""
    return bool(
        connections >= limits.min_events_slow
        and seen_for_ms >= (connections - 1) * limits.slow_interval_ms
    )
