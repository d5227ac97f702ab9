"""The ingest kernel's named steps on their own (`state.ingest_steps`), at the edges the
whole-kernel tests reach only by chance."""

from __future__ import annotations

from typing import Any

import numpy as np

from beaconwatch.config import Config
from beaconwatch.state.ingest_steps import (
    ACCEPTED,
    BEYOND_RING,
    DUE,
    DUE_PERIOD_CHECK,
    NEVER_MS,
    NOT_DUE,
    TOO_FAR_FUTURE,
    TOO_LATE,
    due_for_scoring,
    event_time_verdict,
)
from beaconwatch.state.kernel_params import limits_from

LIMITS = limits_from(Config())
T_MS = 10_000_000_000


def _due(connections: int, scored_count: int, refine_at: int = 0, alert_ms: int = NEVER_MS,
         unsigned: bool = False) -> int:  # fmt: skip
    cast: Any = np.uint64 if unsigned else np.int64  # the kernel's count types
    return int(
        due_for_scoring(
            cast(connections),
            T_MS,
            T_MS - 3_600_000,
            alert_ms,
            cast(scored_count),
            T_MS - 1,
            refine_at,
            LIMITS,
        )
    )


def test_a_backed_off_pair_is_not_due_whatever_the_counts_integer_type() -> None:
    # A backoff sets scored_count above the connections; unsigned counts (numba's int() of a
    # uint32 column) must not wrap the difference round to "due".
    backed_off = LIMITS.min_events + 40
    for unsigned in (False, True):
        assert _due(LIMITS.min_events + 10, backed_off, unsigned=unsigned) == NOT_DUE
    assert _due(backed_off + LIMITS.rescore_every, backed_off) == DUE


def test_period_checks_come_even_within_the_cooldown() -> None:
    n = LIMITS.min_events * 2
    assert _due(n, n - 1, alert_ms=T_MS - 1) == NOT_DUE
    assert _due(n, n - 1, refine_at=n, alert_ms=T_MS - 1) == DUE_PERIOD_CHECK


def test_event_time_verdicts() -> None:
    epoch, oldest, latest = 1_000, 5_000, 9_000
    assert event_time_verdict(6_000, 6_100, oldest, epoch, latest) == ACCEPTED
    assert event_time_verdict(4_000, 4_999, oldest, epoch, latest) == TOO_LATE
    assert event_time_verdict(4_000, 5_000, oldest, epoch, latest) == ACCEPTED  # ended in time
    assert event_time_verdict(500, 6_000, 0, epoch, latest) == TOO_LATE  # before the epoch
    assert event_time_verdict(9_001, 9_001, oldest, epoch, latest) == TOO_FAR_FUTURE
    far = epoch + 0xFFFF_FFFF
    assert event_time_verdict(far, far, oldest, epoch, far + 1) == BEYOND_RING
