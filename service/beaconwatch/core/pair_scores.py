"""Scores of every tracked pair on demand (evaluation, hunting), not only of those that alerted.

The service never needs this: it publishes alerts. Evaluations do, to draw score distributions
of beacons and benign pairs and to sweep thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from beaconwatch.domain.addresses import halves_to_ip
from beaconwatch.domain.alert_rows import AlertRows
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


# What `score_rows` adds to the window's statistics: columns of its `AlertRows`.
EXTRA_NAMES = ("prevalence_sources", "prevalence", "prevalence_factor", "raw_score", "check_ins")


def pair_scores(table: PairTable, scored: AlertRows, which: np.ndarray) -> list[PairScore]:
    """One `PairScore` per index ``which`` of ``scored`` (`score_rows`' output)."""
    names = [s.name.lower() for s in Stat if s.name != "SIZE"]
    out = []
    for i in which.tolist():
        row = int(scored.row[i])
        vector = scored.stats[i]
        values = {name: float(vector[Stat[name.upper()]]) for name in names}
        values.update({name: float(getattr(scored, name)[i]) for name in EXTRA_NAMES})
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
