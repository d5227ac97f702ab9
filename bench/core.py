"""Benchmark the in-process core: decode + state + scoring, and memory per tracked pair.

Usage: python bench/core.py [--records N] [--pairs N]

Prints flows/s of `Pipeline.process_records` on simulated goflow2 JSON (batches of 10k, as the
service gets them from Kafka), the same for a many-pairs mix, bytes per tracked pair at 1M pairs
(table arrays, and the process RSS growth while filling them), and the peak RSS.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import time

import numpy as np

from beaconwatch.config import Config, with_overrides
from beaconwatch.core.flows import FlowBatch
from beaconwatch.core.pipeline import Pipeline
from beaconwatch.simulate.generator import SimulationSpec, TrafficSimulator

BATCH = 10_000


def rss_mib() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def cpu_model() -> str:
    with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown cpu"


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def simulated_records(count: int, hosts: int, seed: int) -> list[bytes]:
    spec = SimulationSpec(seed=seed, hosts=hosts, beacons=min(50, hosts), duration_s=None)
    out: list[bytes] = []
    for record in TrafficSimulator(spec).records():
        out.append(record.value)
        if len(out) >= count:
            break
    return out


def time_pipeline(records: list[bytes], config: Config, repeats: int) -> tuple[float, int]:
    """Median flows/s over `repeats` fresh pipelines (each pays no JIT: kernels are cached)."""
    rates = []
    alerts = 0
    for _ in range(repeats):
        pipeline = Pipeline(config)
        pipeline.process_records(records[:BATCH])  # warm caches, first watermark
        start = time.perf_counter()
        alerts = 0
        for lo in range(BATCH, len(records), BATCH):
            alerts += len(pipeline.process_records(records[lo : lo + BATCH]).alerts)
        rates.append((len(records) - BATCH) / (time.perf_counter() - start))
    return statistics.median(rates), alerts


def pairs_memory(n_pairs: int) -> tuple[float, float, float]:
    """(table bytes/pair, RSS growth bytes/pair, ingest flows/s) for n_pairs distinct pairs."""
    config = with_overrides(Config(), state={"max_pairs": n_pairs})
    before = rss_mib()
    pipeline = Pipeline(config)
    table = pipeline.detector.table
    rng = np.random.default_rng(1)
    t0 = 1_750_000_000_000
    start = time.perf_counter()
    for lo in range(0, n_pairs, 100_000):
        n = min(100_000, n_pairs - lo)
        ids = np.arange(lo, lo + n, dtype=np.uint64)
        batch = FlowBatch.from_columns(
            start_ms=t0 + np.sort(rng.integers(0, 60_000, n)) + lo,
            src_hi=np.zeros(n), src_lo=(0xFFFF_0A00_0000 + (ids >> 8)), dst_hi=np.zeros(n),
            dst_lo=0xFFFF_CB00_7100 + (ids & 0xFF), src_port=np.full(n, 50_000),
            dst_port=np.full(n, 443), proto=np.full(n, 6), bytes=np.full(n, 300),
        )  # fmt: skip
        pipeline.detector.process(batch)
    elapsed = time.perf_counter() - start
    assert table.tracked_pairs == n_pairs, table.tracked_pairs
    grown = (rss_mib() - before) * 1024 * 1024
    return table.bytes_per_pair, grown / n_pairs, n_pairs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0))
    print(f"machine: {platform.machine()}, {cpu_model()}, {cores} cores, "
          f"python {platform.python_version()}")  # fmt: skip
    config = Config()
    for label, hosts in (("demo mix (300 hosts)", 300), ("wide mix (5,000 hosts)", 5_000)):
        t = time.perf_counter()
        records = simulated_records(args.records, hosts, seed=7)
        gen_s = time.perf_counter() - t
        mean_len = sum(map(len, records)) / len(records)
        rate, alerts = time_pipeline(records, config, args.repeats)
        pipeline = Pipeline(config)
        for lo in range(0, len(records), BATCH):
            pipeline.process_records(records[lo : lo + BATCH])
        print(f"core {label}: {rate:,.0f} flows/s (decode+state+scoring, goflow2 JSON, "
              f"{mean_len:.0f} B/record, {len(records):,} records, batch {BATCH:,}; "
              f"{pipeline.stats.tracked_pairs:,} pairs, {alerts} alerts; generated in "
              f"{gen_s:.0f} s)")  # fmt: skip
    table_bpp, rss_bpp, ingest_rate = pairs_memory(args.pairs)
    print(f"state at {args.pairs:,} pairs: {table_bpp:.0f} bytes/pair in the table arrays, "
          f"{rss_bpp:.0f} bytes/pair RSS growth; "
          f"ingest of new pairs {ingest_rate:,.0f} flows/s")  # fmt: skip
    print(f"peak RSS: {peak_rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
