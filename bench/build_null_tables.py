"""Rebuild the shipped Poisson null quantiles: service/beaconwatch/scoring/null_quantiles.npz
(the fit statistic's), null_interval_quantiles.npz (the raw intervals' CV and gap floor) and
null_lattice_quantiles.npz (the lattice statistic of packet-sampled pairs).

Usage: python bench/build_null_tables.py [--sims N] [--workers N] [--out PATH]
       [--only fit|intervals|lattice]

Simulates NULL_SHIPPED_SIMS Poisson windows per window length (3..NULL_MAX_INTERVALS intervals)
for both of the detector's tables (every connection, every second one), one row per task over
a process pool, and saves the quantiles with the fingerprint of the sources they came from.
It drops numba's cached kernels first when kernel sources changed (`tests/harness/jit_cache.py`).
Rerun it (``make null-tables``) after editing scoring/periodicity.py or the null simulation in
scoring/significance.py (the fit's table, several minutes on 2 cores),
scoring/interval_significance.py (about a minute) or scoring/lattice.py (the lattice's, about 20
minutes on 2 cores): a stale file is ignored with a warning, and tests/unit/test_significance.py
/ test_interval_significance.py / test_lattice.py fail on one.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
from tests.harness.jit_cache import drop_stale

from beaconwatch.scoring import interval_significance, lattice_null
from beaconwatch.scoring import significance as sig

F64 = sig.F64


def _row(task: tuple[int, int, int, int]) -> tuple[int, int, F64, float]:
    k, m, sims, seed = task
    t0 = time.perf_counter()
    row = sig.null_quantile_row(m, sims, seed, events_per_cycle=k)
    return k, m, row, time.perf_counter() - t0


def build(sims: int, seed: int, workers: int) -> F64:
    """The detector's tables, shape (len(SHIPPED_CYCLES), NULL_MAX_INTERVALS + 1, N_LEVELS)."""
    rows = sig.NULL_MAX_INTERVALS + 1
    tables = np.stack([sig.empty_table(rows) for _ in sig.SHIPPED_CYCLES])
    # Longest windows first, so the pool does not end on one slow row.
    tasks = [(k, m, sims, seed) for m in range(rows - 1, sig.MIN_INTERVALS - 1, -1)
             for k in sig.SHIPPED_CYCLES]  # fmt: skip
    sig.null_quantile_row(sig.MIN_INTERVALS, 10, seed)  # compile before forking the workers
    done = 0
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for k, m, row, took_s in pool.imap_unordered(_row, tasks):
            tables[sig.SHIPPED_CYCLES.index(k), m] = row
            done += 1
            what = f"events_per_cycle={k} intervals={m:2d}"
            print(f"  {done:3d}/{len(tasks)}  {what}  {took_s:5.1f} s", flush=True)
    return tables


def _lattice_row(task: tuple[int, int, int, int]) -> tuple[int, int, F64]:
    m, sims, seed, k = task
    return k, m, lattice_null.lattice_null_row(m, sims, seed, k)


def build_lattice(workers: int) -> None:
    """The lattice statistic's tables (`scoring.lattice_null`), one row per task."""
    lattice_null.lattice_null_row(8, 10, 0, 1)  # compile before forking the workers
    rows: dict[tuple[int, int], F64] = {}
    tasks = lattice_null.shipped_tasks()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for k, m, row in pool.imap_unordered(_lattice_row, tasks):
            rows[k, m] = row
            print(f"  {len(rows):3d}/{len(tasks)}  lattice events_per_cycle={k} intervals={m:2d}",
                  flush=True)  # fmt: skip
    lattice_null.write_rows(
        lattice_null.LATTICE_SHIPPED_PATH, rows, lattice_null.LATTICE_SHIPPED_SIMS
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=sig.NULL_SHIPPED_SIMS)
    parser.add_argument("--seed", type=int, default=sig.NULL_SEED)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=sig.SHIPPED_PATH)
    parser.add_argument(
        "--only", choices=("fit", "intervals", "lattice"), help="rebuild one of the files"
    )
    args = parser.parse_args()
    # numba's cache misses edits to a kernel's callees: a table simulated by the null
    # kernels' cached code for a lattice.py edited since would be the old statistic's.
    if dropped := drop_stale():
        print(f"kernel sources changed: dropped {dropped} cached kernel files")
    if args.only in (None, "lattice"):
        t0 = time.perf_counter()
        build_lattice(args.workers)
        path = lattice_null.LATTICE_SHIPPED_PATH
        print(f"wrote {path} ({path.stat().st_size:,} bytes) in {time.perf_counter() - t0:.0f} s")
        if args.only == "lattice":
            return
    if args.only != "fit":
        t0 = time.perf_counter()
        interval_significance.build_shipped()
        path = interval_significance.INTERVAL_SHIPPED_PATH
        print(f"wrote {path} ({path.stat().st_size:,} bytes) in {time.perf_counter() - t0:.0f} s")
        if args.only == "intervals":
            return
    t0 = time.perf_counter()
    tables = build(args.sims, args.seed, args.workers)
    sig.write_shipped(args.out, tables, args.sims, args.seed)
    took_s = time.perf_counter() - t0
    print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes): {args.sims:,} sims per row, "
          f"p-values down to {sig.best_p_value(tables[0]):.3g}, {took_s:.0f} s on "
          f"{args.workers} workers")  # fmt: skip


if __name__ == "__main__":
    main()
