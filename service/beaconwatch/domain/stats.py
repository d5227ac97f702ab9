"""Plain counters the core updates; adapters publish them (e.g. to Prometheus) once per batch.

Keeping these as plain numbers keeps the core free of any metrics library and lets a unit test
read exactly what happened.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class AheadExample:
    """One flow far ahead of its partition's event time, for the operator's warning."""

    src_ip: str
    dst_ip: str
    dst_port: int
    ahead_s: float  # its export time minus the wall clock


@dataclass(slots=True)
class DetectorStats:
    flows_total: int = 0  # flows accepted into state
    rejected_by_reason: Counter[str] = field(default_factory=Counter)  # records, by reason
    ignored_by_reason: Counter[str] = field(default_factory=Counter)  # valid flows out of scope
    evicted_idle_total: int = 0  # idle pairs dropped (>= 2 connections: after the long window)
    evicted_capacity_total: int = 0  # pairs dropped because max_pairs was reached
    # ...of them pairs with history (two connections or more): a table under pressure evicts
    # one-off pairs first (`state.pair_table.evict_least_recent`); non-zero means it is full of
    # established pairs, or a flood outlasted the window.
    evicted_established_total: int = 0
    evicted_revoked_total: int = 0  # pairs dropped with a revoked partition
    pairs_scored_total: int = 0
    # Records that were not new connections: "duplicate" (same flow from another exporter or
    # the reply direction) and "continuation" (the next piece of a flow cut by active timeout).
    merged_by_kind: Counter[str] = field(default_factory=Counter)
    alerts_suppressed_by_reason: Counter[str] = field(default_factory=Counter)  # allowlist, ...
    alerts_by_severity: Counter[str] = field(default_factory=Counter)
    tracked_pairs: int = 0  # gauge
    watermark_ms: int = 0  # gauge: the laggiest partition's watermark (`core.watermark`)
    # Flows ahead of the wall clock by more than state.clock_tolerance_s: kept, but their
    # exporter's clock is fast (`core.watermark`); the latest such flow.
    flows_ahead_total: int = 0
    ahead_example: AheadExample | None = None
