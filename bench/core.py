"""Benchmark the in-process core: decode + state + scoring, and memory per tracked pair.

Usage: python bench/core.py [--records N] [--pairs N]

Prints flows/s of `Pipeline.process_records` on simulated goflow2 JSON (batches of 10k, as the
service gets them from Kafka) with the time per flow split into decoding and the detector
(state + scoring), the same for a many-pairs mix, bytes per tracked pair at 1M pairs
(table arrays, and the process RSS growth while filling them), and the peak RSS.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import statistics
import tempfile
import time
from typing import Any

import numpy as np

from beaconwatch.config import Config, with_overrides
from beaconwatch.core.detector import Detector
from beaconwatch.core.pipeline import Pipeline
from beaconwatch.decode.registry import get_decoder
from beaconwatch.domain.flows import FlowBatch
from beaconwatch.simulate.generator import SimulationSpec, TrafficSimulator

BATCH = 10_000
MIXES = (("demo mix (300 hosts)", 300), ("wide mix (5,000 hosts)", 5_000))


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


def _write_records(path: str, count: int, hosts: int, seed: int) -> None:
    spec = SimulationSpec(seed=seed, hosts=hosts, beacons=min(50, hosts), duration_s=None)
    with open(path, "wb") as f:
        for i, record in enumerate(TrafficSimulator(spec).records()):
            if i >= count:
                break
            f.write(record.value + b"\n")


def simulated_records(count: int, hosts: int, seed: int) -> list[bytes]:
    """Records generated in a child process and read back, so that the simulator's garbage
    does not fragment this process's heap and inflate the RSS figures."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl") as tmp:
        ctx = multiprocessing.get_context("spawn")
        child = ctx.Process(target=_write_records, args=(tmp.name, count, hosts, seed))
        child.start()
        child.join()
        if child.exitcode != 0:
            raise RuntimeError("record generation failed")
        with open(tmp.name, "rb") as f:
            return f.read().splitlines()


def time_pipeline(records: list[bytes], config: Config, repeats: int) -> tuple[float, float, int]:
    """Median flows/s over `repeats` fresh pipelines (each pays no JIT: kernels are cached),
    by the wall clock and per second of this process's CPU time. On a shared VM the second is
    the steadier figure: it does not count the time another process (or the hypervisor)
    holds the core. The core is single-threaded, so the two agree on an idle machine."""
    wall_rates, cpu_rates = [], []
    alerts = 0
    for _ in range(repeats):
        pipeline = Pipeline(config)
        pipeline.process_records(records[:BATCH])  # warm caches, first watermark
        start, start_cpu = time.perf_counter(), time.process_time()
        alerts = 0
        for lo in range(BATCH, len(records), BATCH):
            alerts += len(pipeline.process_records(records[lo : lo + BATCH]).alerts)
        wall_rates.append((len(records) - BATCH) / (time.perf_counter() - start))
        cpu_rates.append((len(records) - BATCH) / (time.process_time() - start_cpu))
    return statistics.median(wall_rates), statistics.median(cpu_rates), alerts


def stage_split(records: list[bytes], config: Config, repeats: int) -> tuple[float, float, int]:
    """(decode-only flows/s, detector-only flows/s, scorings): where a flow's time goes. The
    records are decoded batch by batch first, then a fresh detector runs on the decoded
    batches; best of ``repeats`` for each."""
    decoder = get_decoder(config.kafka.input_format)
    batches = [records[lo : lo + BATCH] for lo in range(0, len(records), BATCH)]
    decode_rates, decoded = [], []
    for _ in range(repeats):
        start = time.process_time()
        decoded = [decoder.decode(batch).flows for batch in batches]
        decode_rates.append(len(records) / (time.process_time() - start))
    detect_rates, scorings = [], 0
    for _ in range(repeats):
        detector = Detector(config)
        start = time.process_time()
        for flows in decoded:
            detector.process(flows)
        detect_rates.append(len(records) / (time.process_time() - start))
        scorings = detector.stats.pairs_scored_total
    return max(decode_rates), max(detect_rates), scorings


def pairs_memory(n_pairs: int) -> tuple[float, float, float, float]:
    """(table bytes/pair, RSS growth bytes/pair, ingest flows/s, peak RSS MiB) at n_pairs."""
    rng = np.random.default_rng(1)
    t0 = int(time.time() * 1000) - 3_600_000
    batches = []
    for lo in range(0, n_pairs, 100_000):
        n = min(100_000, n_pairs - lo)
        ids = np.arange(lo, lo + n, dtype=np.uint64)
        batches.append(FlowBatch.from_columns(
            start_ms=t0 + np.sort(rng.integers(0, 60_000, n)) + lo,
            src_hi=np.zeros(n), src_lo=(0xFFFF_0A00_0000 + (ids >> 8)), dst_hi=np.zeros(n),
            dst_lo=0xFFFF_CB00_7100 + (ids & 0xFF), src_port=np.full(n, 50_000),
            dst_port=np.full(n, 443), proto=np.full(n, 6), bytes=np.full(n, 300),
        ))  # fmt: skip
    # Load the compiled kernels first, so their code does not count as state.
    Pipeline(with_overrides(Config(), state={"max_pairs": 1024})).detector.process(batches[0])
    # Bytes per row: prefix channels (`core.channels`) add rows, one per (source, /24, port)
    # (here 1 per 256 pairs), not bytes per row; `max_pairs` counts them too.
    config = with_overrides(Config(), state={"max_pairs": n_pairs, "prefix_channels": False})
    before = rss_mib()
    pipeline = Pipeline(config)
    table = pipeline.detector.table
    start = time.perf_counter()
    for batch in batches:
        pipeline.detector.process(batch)
    elapsed = time.perf_counter() - start
    assert table.tracked_pairs == n_pairs, table.tracked_pairs
    grown = (rss_mib() - before) * 1024 * 1024
    return table.bytes_per_pair, grown / n_pairs, n_pairs / elapsed, peak_rss_mib()


def _pairs_memory_child(n_pairs: int, out: Any) -> None:
    out.put(pairs_memory(n_pairs))


def pairs_memory_in_child(n_pairs: int) -> tuple[float, float, float, float]:
    """Run `pairs_memory` in a fresh process: its RSS figures are then the state's alone."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_pairs_memory_child, args=(n_pairs, queue))
    child.start()
    result: tuple[float, float, float, float] = queue.get()
    child.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0))
    print(f"machine: {platform.machine()}, {cpu_model()}, {cores} cores, "
          f"python {platform.python_version()}")  # fmt: skip
    table_bpp, rss_bpp, ingest_rate, peak_mib = pairs_memory_in_child(args.pairs)
    print(f"state at {args.pairs:,} pairs: {table_bpp:.0f} bytes/pair allocated in the table "
          f"arrays, {rss_bpp:.0f} bytes/pair RSS growth once all are filled; "
          f"ingest of new pairs {ingest_rate:,.0f} flows/s; "
          f"peak RSS of that process {peak_mib:.0f} MiB")  # fmt: skip
    config = Config()
    for label, hosts in MIXES:
        records = simulated_records(args.records, hosts, seed=7)
        mean_len = sum(map(len, records)) / len(records)
        rate, cpu_rate, alerts = time_pipeline(records, config, args.repeats)
        before_mib = rss_mib()
        pipeline = Pipeline(config)
        for lo in range(0, len(records), BATCH):
            pipeline.process_records(records[lo : lo + BATCH])
        grown_mib = rss_mib() - before_mib
        print(f"core {label}: {rate:,.0f} flows/s wall, {cpu_rate:,.0f} per CPU-second "
              f"(decode+state+scoring, goflow2 JSON, "
              f"{mean_len:.0f} B/record, {len(records):,} records, batch {BATCH:,}; "
              f"{pipeline.stats.tracked_pairs:,} pairs, {alerts} alerts; "
              f"pipeline RSS +{grown_mib:.0f} MiB)")  # fmt: skip
    records_mib = sum(map(len, records)) / 2**20
    print(
        f"peak RSS of this process: {peak_rss_mib():.0f} MiB "
        f"(holds the last {len(records):,} input records, {records_mib:.0f} MiB)"
    )
    # Last, so that its decoded batches do not disturb the RSS figures above.
    for label, hosts in MIXES:
        records = simulated_records(args.records, hosts, seed=7)
        decode_rate, detect_rate, scorings = stage_split(records, config, args.repeats)
        print(f"split, {label}: decode {1e6 / decode_rate:.2f} us/flow, state+scoring "
              f"{1e6 / detect_rate:.2f} us/flow ({scorings:,} scorings = "
              f"{scorings / len(records):.1%} of the flows); per CPU-second, best of "
              f"{args.repeats}")  # fmt: skip


if __name__ == "__main__":
    main()
