"""Plain counters the core updates; adapters publish them (e.g. to Prometheus) once per batch.

Keeping these as plain numbers keeps the core free of any metrics library and lets a unit test
read exactly what happened.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class DetectorStats:
    flows_total: int = 0  # flows accepted into state
    rejected_by_reason: Counter[str] = field(default_factory=Counter)  # records, by reason
    evicted_idle_total: int = 0  # pairs dropped after being idle for the whole window
    evicted_capacity_total: int = 0  # pairs dropped because max_pairs was reached
    evicted_revoked_total: int = 0  # pairs dropped with a revoked partition
    pairs_scored_total: int = 0
    alerts_by_severity: Counter[str] = field(default_factory=Counter)
    tracked_pairs: int = 0  # gauge
    watermark_ms: int = 0  # gauge: event time of the newest flow seen
