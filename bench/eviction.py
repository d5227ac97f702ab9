"""A flood of one-off pairs against the default pair cap, with an established 1 h beacon.

Usage: python bench/eviction.py [--flood N] [--max-pairs N]

The beacon checks in every hour (10 % jitter) for 3 h; then N one-off pairs (each flow a new
source -> destination) arrive within the next hour, before its fourth check-in, and the
beacon goes on for 6 h more. Prints the flood's rate through the detector, the evictions (of
them pairs with history) and whether and when the beacon was alerted.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from beaconwatch.config import Config, with_overrides
from beaconwatch.core.detector import Detector
from beaconwatch.domain.addresses import ip_to_halves
from beaconwatch.domain.flows import FlowBatch

T0_MS = 1_750_000_000_000
HOUR_MS = 3_600_000
V4 = np.uint64(0xFFFF_0000_0000)
CHUNK = 500_000


def beacon(rng: np.random.Generator, hours: int) -> FlowBatch:
    t = T0_MS + np.cumsum(HOUR_MS * rng.uniform(0.9, 1.1, hours)).astype(np.int64)
    src, dst = ip_to_halves("10.0.0.7"), ip_to_halves("203.0.113.50")
    n = hours
    return FlowBatch.from_columns(
        start_ms=t, src_hi=np.full(n, src[0]), src_lo=np.full(n, src[1]), dst_hi=np.full(n, dst[0]),
        dst_lo=np.full(n, dst[1]), src_port=50_000 + np.arange(n), dst_port=np.full(n, 443),
        proto=np.full(n, 6), bytes=np.full(n, 700),
    )  # fmt: skip


def flood(first: int, n: int, start_ms: int, span_ms: int) -> FlowBatch:
    i = np.arange(first, first + n, dtype=np.uint64)
    start = start_ms + (np.arange(n, dtype=np.int64) * span_ms) // max(n, 1)
    return FlowBatch.from_columns(
        start_ms=start, src_hi=np.zeros(n),
        src_lo=V4 | np.uint64(0x0A01_0000) | (i % np.uint64(60_000)), dst_hi=np.zeros(n),
        dst_lo=np.uint64(0x2001_0000_0000) + i, src_port=40_000 + (i % np.uint64(20_000)),
        dst_port=np.full(n, 443), proto=np.full(n, 6), bytes=np.full(n, 500),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--flood", type=int, default=10_000_000)
    parser.add_argument("--max-pairs", type=int, default=Config().state.max_pairs)
    args = parser.parse_args()
    config = with_overrides(Config(), state={"max_pairs": args.max_pairs})
    det = Detector(config, wall_clock_ms=lambda: T0_MS + 1000 * HOUR_MS)
    checkins = beacon(np.random.default_rng(1), 10)
    alerts = []
    flood_start = int(checkins.start_ms[2]) + 60_000  # after the third check-in
    span = int(checkins.start_ms[3]) - flood_start - 60_000  # ... all before the fourth
    for k in range(3):
        alerts += det.process(checkins.take(np.array([k]))).alerts
    started = time.perf_counter()
    for first in range(0, args.flood, CHUNK):
        n = min(CHUNK, args.flood - first)
        chunk_start = flood_start + (span * first) // args.flood
        alerts += det.process(flood(first, n, chunk_start, (span * n) // args.flood)).alerts
    elapsed = time.perf_counter() - started
    for k in range(3, len(checkins)):
        alerts += det.process(checkins.take(np.array([k]))).alerts
    mine = [a for a in alerts if a.dst_ip == "203.0.113.50"]
    s = det.stats
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}; max_pairs {args.max_pairs:,}"
    )
    print(
        f"flood of {args.flood:,} one-off pairs within one hour of event time: "
        f"{args.flood / elapsed:,.0f} flows/s through the detector; evicted "
        f"{s.evicted_capacity_total:,} pairs, {getattr(s, 'evicted_established_total', '?')} of "
        "them with history"
    )
    when = f"at its check-in {mine[0].stats.check_ins}" if mine else "never"
    print(f"the 1 h beacon (3 check-ins before the flood, 7 after): alerted {when}")


if __name__ == "__main__":
    main()
