"""The ingest kernel's limits as a named record, built from the config in one place (its
alert policy's floats are `alerting.policy.Policy`, a record of the same kind).

A `typing.NamedTuple` of scalars: numba passes them to ``@njit`` functions by value, reads a
field as cheaply as a local, and caches the kernels compiled for them (``cache=True``), while
the Python side names every field instead of indexing a vector by hand-numbered slots. All
fields of one record have one type (``int`` / ``float``), so numba types each as a uniform
tuple and one compilation serves every config.

Per batch the detector fills the batch's fields of `Limits` with ``_replace`` (a few
microseconds, once per kernel call).
"""

from __future__ import annotations

from typing import NamedTuple

from beaconwatch.config import Config


class Limits(NamedTuple):
    """Integer limits of the ingest kernel (ms unless named otherwise)."""

    # Per batch (`core.detector` sets them before each kernel call):
    watermark_ms: int  # the partition's, before the batch: lateness is judged against it
    max_start_ms: int  # absolute: wall clock + max_future_s (garbage timestamps)
    evict_batch: int  # pairs evicted at once when the table is full
    # Or-ed into every flow's port_proto key: 0 for exact pairs, `levels.PREFIX_LEVEL` for the
    # prefix pass over destination-masked flows (`core.channels`).
    level: int
    long_connection_ms: int  # a connection this long to a rare destination alerts (0: never)
    # From the config:
    lateness_ms: int
    window_ms: int
    long_window_ms: int  # slow pairs' windows reach back up to this (see `state.ingest`)
    min_events: int
    min_events_slow: int  # a slow pair is scored from this many connections...
    slow_interval_ms: int  # ...when they came at most one per this, on average
    rescore_every: int
    rescore_interval_ms: int
    cooldown_ms: int
    duplicate_tolerance_ms: int
    continuation_gap_ms: int
    sampled_continuation_gap_ms: int  # the same for packet-sampled pairs (pieces go missing)
    long_sessions: int  # ...once the pair has had this many, each within the window of the last
    sparse_min_interval_ms: int  # rule sparse-beacon: both intervals of 3 at least this (0: off)


def limits_from(config: Config) -> Limits:
    """The config's limits; the per-batch fields are 0 until the detector sets them."""
    state, scoring, alerting = config.state, config.scoring, config.alerting
    return Limits(
        watermark_ms=0,
        max_start_ms=0,
        evict_batch=0,
        level=0,
        long_connection_ms=_ms(alerting.long_connection_s),
        lateness_ms=_ms(state.allowed_lateness_s),
        window_ms=_ms(state.window_s),
        long_window_ms=_ms(state.long_window_s),
        min_events=int(scoring.min_events),
        min_events_slow=int(min(scoring.min_events_slow, scoring.min_events)),
        slow_interval_ms=_ms(scoring.slow_interval_s),
        rescore_every=int(scoring.rescore_every_events),
        rescore_interval_ms=_ms(scoring.rescore_interval_s),
        cooldown_ms=_ms(alerting.cooldown_s),
        duplicate_tolerance_ms=_ms(state.duplicate_tolerance_s),
        continuation_gap_ms=_ms(state.continuation_gap_s),
        sampled_continuation_gap_ms=_ms(state.sampled_continuation_gap_s),
        long_sessions=int(alerting.long_connection_sessions),
        sparse_min_interval_ms=_ms(alerting.sparse_min_interval_s),
    )


def _ms(seconds: float) -> int:
    return int(seconds * 1000)
