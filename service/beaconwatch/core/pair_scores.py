"""Scores of every tracked pair on demand (evaluation, hunting), not only of those that alerted.

The service never needs this: it publishes alerts. Evaluations do, to draw score distributions
of beacons and benign pairs and to sweep thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from beaconwatch.core.addresses import halves_to_ip
from beaconwatch.scoring.window_score import Stat
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


def pair_scores(table: PairTable, rows: np.ndarray, stats: np.ndarray) -> list[PairScore]:
    """One `PairScore` per row, from a (rows, Stat.SIZE) matrix of kernel stats."""
    names = [s.name.lower() for s in Stat if s.name != "SIZE"]
    out = []
    for row, vector in zip(rows.tolist(), stats, strict=True):
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
                stats={name: float(vector[Stat[name.upper()]]) for name in names},
            )
        )
    return out
