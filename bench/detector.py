"""Detector alone (state + scoring, no decoding) on the evaluation's synthetic office.

Usage (from the repository root, for `evaluation/`):
    python -m bench.detector [--prefix-channels on|off] [--flows-file PATH] [--rotate]

Times `Detector.process` over the evaluation scenario's flows (seed 1, 5.6M flows) in
batches of 10k, kernels loaded first, and prints flows/s (wall and per CPU-second), the
scorings and the prefix channel rows at the end. ``--flows-file``: keep the generated flows
there (npz) and read them back on later runs, so that each timed process spends its time
on the detector. ``--rotate``: the worst case for prefix channels, every IPv4 flow to a
random IP of its destination's /24 (a whole office behind rotating CDN edges): every
channel is promoted and every flow is fed twice. Run it twice, on and off, alternating
(A B A B ...), for an A/B on one machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from pathlib import Path

import numpy as np
from evaluation.scenarios import ScenarioSpec, build_scenario

from beaconwatch.config import Config, with_overrides
from beaconwatch.core.detector import Detector, warm_up
from beaconwatch.domain.flows import FlowBatch
from beaconwatch.state.levels import PREFIX_LEVEL

BATCH = 10_000
_V4_MAPPED = np.uint64(0x0000_FFFF_0000_0000)


def scenario_flows(path: Path | None) -> FlowBatch:
    if path is not None and path.exists():
        with np.load(path) as data:
            # from_columns: a cache written before a column existed gets its default.
            return FlowBatch.from_columns(**{name: data[name] for name in data.files})
    flows = build_scenario(ScenarioSpec(seed=1)).flows
    if path is not None:
        columns = {
            f.name: getattr(flows, f.name) for f in dataclasses.fields(flows) if f.name != "names"
        }
        np.savez(path, **columns)  # type: ignore[arg-type]
    return flows


def rotated(flows: FlowBatch, seed: int = 5) -> FlowBatch:
    """Each IPv4 destination replaced by a random IP of its /24."""
    v4 = (flows.dst_hi == 0) & ((flows.dst_lo & np.uint64(0xFFFF_FFFF_0000_0000)) == _V4_MAPPED)
    octet = np.random.default_rng(seed).integers(1, 255, len(flows)).astype(np.uint64)
    dst_lo = np.where(v4, (flows.dst_lo & ~np.uint64(0xFF)) | octet, flows.dst_lo)
    return dataclasses.replace(flows, dst_lo=dst_lo.astype(np.uint64))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--prefix-channels", choices=("on", "off"), default="on")
    parser.add_argument("--flows-file", type=Path)
    parser.add_argument("--rotate", action="store_true")
    args = parser.parse_args()
    flows = scenario_flows(args.flows_file)
    if args.rotate:
        flows = rotated(flows)
    config = with_overrides(Config(), state={"prefix_channels": args.prefix_channels == "on"})
    warm_up(config)
    last_ms = int(flows.start_ms.max())
    detector = Detector(config, wall_clock_ms=lambda: last_ms + 1)
    batches = [flows.take(slice(lo, lo + BATCH)) for lo in range(0, len(flows), BATCH)]  # type: ignore[arg-type]
    start, start_cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        detector.process(batch)
    wall_s, cpu_s = time.perf_counter() - start, time.process_time() - start_cpu
    table = detector.table
    prefix_rows = int(np.count_nonzero(table.used & ((table.port_proto & PREFIX_LEVEL) != 0)))
    print(
        f"{platform.machine()} {os.cpu_count()} cores; prefix_channels {args.prefix_channels}"
        f"{', rotated' if args.rotate else ''}: {len(flows):,} flows, "
        f"{len(flows) / wall_s:,.0f} flows/s wall, {len(flows) / cpu_s:,.0f} per CPU-second; "
        f"{detector.stats.pairs_scored_total:,} scorings; {table.tracked_pairs:,} rows "
        f"tracked at the end, {prefix_rows:,} of them prefix channels"
    )


if __name__ == "__main__":
    main()
