"""Scores of every tracked pair on demand (evaluation, hunting), not only of those that alerted.

The service never needs this: it publishes alerts. Evaluations do, to draw score distributions
of beacons and benign pairs and to sweep thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from beaconwatch.domain.addresses import halves_to_ip
from beaconwatch.scoring.window_score import Stat
from beaconwatch.state.ingest import (
    EXTRA_CHECK_INS,
    EXTRA_PREVALENCE,
    EXTRA_PREVALENCE_FACTOR,
    EXTRA_PREVALENCE_SOURCES,
    EXTRA_RAW_SCORE,
)  # fmt: skip
from beaconwatch.state.pair_table import PairTable


@dataclass(frozen=True, slots=True)
class PairScore:
    src: str
    dst: str
    dst_port: int
    proto: int
    first_seen_ms: int
    last_seen_ms: int
    stats: dict[str, float]  # lower-case `Stat` names -> value, e.g. "score", "period_s"


EXTRA_NAMES = {
    "prevalence_sources": EXTRA_PREVALENCE_SOURCES,
    "prevalence": EXTRA_PREVALENCE,
    "prevalence_factor": EXTRA_PREVALENCE_FACTOR,
    "raw_score": EXTRA_RAW_SCORE,
    "check_ins": EXTRA_CHECK_INS,
}


def pair_scores(
    table: PairTable, rows: np.ndarray, stats: np.ndarray, extra: np.ndarray
) -> list[PairScore]:
    """One `PairScore` per row, from the kernel's (rows, Stat.SIZE) stats and extra matrices."""
    names = [s.name.lower() for s in Stat if s.name != "SIZE"]
    out = []
    for row, vector, more in zip(rows.tolist(), stats, extra, strict=True):
        values = {name: float(vector[Stat[name.upper()]]) for name in names}
        values.update({name: float(more[slot]) for name, slot in EXTRA_NAMES.items()})
        keys = table.keys[row]
        pp = int(table.port_proto[row])
        out.append(
            PairScore(
                src=halves_to_ip(keys[0], keys[1]),
                dst=halves_to_ip(keys[2], keys[3]),
                dst_port=pp >> 8,
                proto=pp & 0xFF,
                first_seen_ms=int(table.first_seen_ms[row]),
                last_seen_ms=int(table.last_seen_ms[row]),
                stats=values,
            )
        )
    return out
