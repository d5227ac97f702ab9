"""The Poisson null of the lattice statistic (`scoring.lattice`), simulated like the other
tests' (`significance`, `interval_significance`): quantiles at `significance.P_LEVELS` per
window length, for every connection and every second one (gamma(2) gaps), shipped in
``null_lattice_quantiles.npz`` with the fingerprint of the sources they came from (built by
`bench/build_null_tables.py`) and simulated with fewer windows at start-up when stale.

Why simulated: the statistic is the best of 9 candidate periods, each refined on the data,
times 4 phase variances. A Bonferroni factor for those 36 tries overpays (most land on the same
period), and the refinement fits the period to the phases, which no closed form prices.

Scale: the statistic depends on the intervals only through d / P with P taken from the data,
so it is scale-free but for the candidate floor (`LATTICE_MIN_PERIOD_S`, ``min_period_s``).
The null windows' mean interval is large enough that the floor never drops a candidate: a
floor that does drop candidates in real windows leaves fewer tries, so the table is
conservative there. Windows longer than `NULL_MAX_INTERVALS` use the last row, which is not
conservative for a best-of statistic (a longer Poisson window has more to pick from); the
detector's rings (``history_events`` 32 by default) stay far below it.
"""

from __future__ import annotations

import hashlib
import inspect
from functools import lru_cache
from pathlib import Path

import numpy as np
from numba import njit

from beaconwatch.domain.dtypes import F64
from beaconwatch.scoring import lattice
from beaconwatch.scoring.kernels import kernel_source
from beaconwatch.scoring.significance import (
    MIN_INTERVALS,
    NULL_MAX_INTERVALS,
    NULL_SEED,
    NULL_TICKS_PER_S,
    SHIPPED_CYCLES,
    empty_table,
    levels_fingerprint,
    null_gaps,
    quantile_row,
    shipped_or_simulated,
    simulate_null,
    table_rows,
    write_shipped,
)

LATTICE_SHIPPED_PATH = Path(__file__).with_name("null_lattice_quantiles.npz")
LATTICE_SHIPPED_SIMS = 200_000  # p down to 5.6e-6, like the other shipped tables
LATTICE_FALLBACK_SIMS = 5_000  # p down to 2e-4; a few seconds for the tables of 32 events
LATTICE_STREAM = 11  # keeps these random streams apart from the other tables'
# Null gaps are `NULL_MEAN_INTERVAL_S` (600 s) long on average; this scales them so that the
# shortest of 64 (about 1/64 of the mean) taken as 3 beats stays far above the 10 s floor.
NULL_SCALE = 100.0


@njit(cache=True, nogil=True)
def _lattice_null_stats(gaps_s: F64, out: F64) -> None:
    """Lattice statistics of Poisson windows (rows of ``gaps_s``), times rounded to ms."""
    sims, m = gaps_s.shape
    ds = np.empty(m)
    for s in range(sims):
        t = 0.0
        last = 0.0
        for i in range(m):
            t += gaps_s[s, i] * NULL_SCALE
            now = np.floor(t * NULL_TICKS_PER_S + 0.5) / NULL_TICKS_PER_S
            ds[i] = now - last
            last = now
        ds.sort()
        out[s] = lattice.lattice_statistic(ds, 0.0)[0]


def lattice_null_row(intervals: int, sims: int, seed: int, events_per_cycle: int) -> F64:
    """Quantile row of windows of ``intervals`` intervals (rows are independent streams)."""
    rng = np.random.default_rng([seed, events_per_cycle, intervals, LATTICE_STREAM])
    stats = np.empty(sims)
    simulate_null(rng, intervals, events_per_cycle, _lattice_null_stats, stats)
    stats.sort()
    return quantile_row(stats)


@lru_cache(maxsize=8)
def lattice_null_table(
    history_events: int, sims: int = LATTICE_FALLBACK_SIMS, seed: int = NULL_SEED,
    events_per_cycle: int = 1,
) -> F64:  # fmt: skip
    """Quantiles, shape (rows, N_LEVELS); read-only, cached. Rows below the lattice test's
    minimum claim nothing (it returns +inf there)."""
    rows = table_rows(history_events)
    table = empty_table(rows)
    for m in range(max(MIN_INTERVALS, lattice.LATTICE_MIN_INTERVALS), rows):
        table[m] = lattice_null_row(m, sims, seed, events_per_cycle)
    table.flags.writeable = False
    return table


def lattice_fingerprint() -> str:
    """Everything the null depends on: a shipped table with another fingerprint is stale."""
    parts = [
        inspect.getsource(lattice),
        kernel_source(_lattice_null_stats),
        inspect.getsource(lattice_null_row),
        inspect.getsource(lattice_null_table),
        inspect.getsource(null_gaps),
        inspect.getsource(simulate_null),
        inspect.getsource(quantile_row),
        repr((NULL_TICKS_PER_S, MIN_INTERVALS, LATTICE_STREAM, NULL_SCALE)),
        levels_fingerprint(),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def shipped_tasks(sims: int = LATTICE_SHIPPED_SIMS) -> list[tuple[int, int, int, int]]:
    """(intervals, sims, seed, events_per_cycle) of every row of the shipped tables, longest
    windows first (so a process pool does not end on one slow row)."""
    rows = range(NULL_MAX_INTERVALS, max(MIN_INTERVALS, lattice.LATTICE_MIN_INTERVALS) - 1, -1)
    return [(m, sims, NULL_SEED, k) for m in rows for k in SHIPPED_CYCLES]


def write_rows(path: Path, rows: dict[tuple[int, int], F64], sims: int) -> None:
    """Write the tables from ``rows`` keyed (events_per_cycle, intervals), as `shipped_tasks`."""
    tables = np.stack([empty_table(NULL_MAX_INTERVALS + 1) for _ in SHIPPED_CYCLES])
    for (k, m), row in rows.items():
        tables[SHIPPED_CYCLES.index(k), m] = row
    write_shipped(path, tables, sims, NULL_SEED, lattice_fingerprint())


def detector_lattice_tables(history_events: int, path: Path = LATTICE_SHIPPED_PATH) -> F64:
    """Shape (2, table_rows(history_events), N_LEVELS): every connection, every second one."""
    return shipped_or_simulated(
        history_events, path, lattice_fingerprint(), lattice_null_table, LATTICE_FALLBACK_SIMS,
        "lattice null",
    )  # fmt: skip
