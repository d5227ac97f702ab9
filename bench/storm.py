"""Good-flow throughput of the core under a storm of bad records (issue #4).

Drives `Pipeline.process_records` (decode + state + scoring, no broker) with batches of raw
records as the service gets them from Kafka (10k records each), once with good records only
and once with the same good records interleaved one for one with garbage (50 %: random bytes,
truncated records, wrong types and ranges, invalid UTF-8 / malformed length prefixes, another
format's records, oversized records; ``beaconwatch.simulate.garbage``).
Prints good flows/s for both and their ratio (target >= 0.5: garbage may at most halve the
good throughput), per format, then the same for a storm of each kind alone and what one
rejected record of that kind costs to decode. Times are CPU time of this process, each run
starting from a collected heap. The clean and the storm runs alternate and each ratio is
taken from one clean run and the storm run right after it (the median of the repeats is
printed): on a shared VM whose speed drifts from minute to minute, a best-of-N of each taken
minutes apart moved the ratio by +/-0.15. While timing, the process holds the records as
bytes only (the simulated flows and the garbage's labels are dropped first), as the service
holds one batch: the collector's full passes over a bench's own scaffolding are not the
pipeline's cost.

    .venv/bin/python bench/storm.py [--good 100000] [--repeats 3] [--formats goflow2-json ...]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import time

from beaconwatch.config import Config, with_overrides
from beaconwatch.core.pipeline import Pipeline
from beaconwatch.decode.registry import get_decoder
from beaconwatch.simulate.encoders import encoder
from beaconwatch.simulate.garbage import GARBAGE_FORMATS, GARBAGE_KINDS, garbage_records
from beaconwatch.simulate.generator import SimulationSpec, TrafficSimulator
from beaconwatch.simulate.model import SimFlow
from core import cpu_model

BATCH = 10_000  # records per batch, the service's default kafka.max_batch_records


def simulated_flows(count: int, seed: int = 1) -> list[SimFlow]:
    """The demo mix of bench/core.py (300 hosts, 50 beacons), first ``count`` flows."""
    spec = SimulationSpec(seed=seed, hosts=300, beacons=50, duration_s=None)
    flows: list[SimFlow] = []
    for _, chunk in TrafficSimulator(spec).flow_chunks():
        flows.extend(chunk)
        if len(flows) >= count:
            return flows[:count]
    return flows


def good_rate(records: list[bytes], good: list[bool], config: Config) -> float:
    """Good records per second through a fresh pipeline; the first batch warms it up."""
    pipeline = Pipeline(config)
    pipeline.process_records(records[:BATCH])
    timed_good = sum(good[BATCH:])
    # Start both runs with the same clean heap: the collector's debt from building the inputs
    # would otherwise fall, as one full collection, into whichever run allocates first (the
    # storm). The collections the records themselves cause are measured.
    gc.collect()
    # CPU time of this process: other load on the machine does not skew the ratio.
    start = time.process_time()
    for lo in range(BATCH, len(records), BATCH):
        pipeline.process_records(records[lo : lo + BATCH])
    return timed_good / (time.process_time() - start)


def reject_costs_us(fmt: str, by_kind: dict[str, list[bytes]]) -> dict[str, float]:
    """Decode-only microseconds per record (best of 3), for a batch of one kind at a time."""
    decoder = get_decoder(fmt)
    costs = {}
    for kind in GARBAGE_KINDS:
        batch = by_kind[kind][:BATCH]
        seconds = []
        for _ in range(3):
            gc.collect()
            start = time.process_time()
            result = decoder.decode(batch)
            seconds.append(time.process_time() - start)
            assert len(result.rejections) == len(batch), kind
        costs[kind] = min(seconds) / len(batch) * 1e6
    return costs


def interleave(good: list[bytes], bad: list[bytes]) -> tuple[list[bytes], list[bool]]:
    """Good and bad records one for one: (records, is_good)."""
    records = [value for pair in zip(good, bad, strict=True) for value in pair]
    return records, [k % 2 == 0 for k in range(len(records))]


def paired_rates(
    clean: list[bytes], storm: tuple[list[bytes], list[bool]], config: Config, repeats: int
) -> tuple[float, float, float]:
    """(median clean rate, median storm rate, median of the per-pair ratios), the clean and
    the storm run alternating."""
    clean_rates, storm_rates, ratios = [], [], []
    for _ in range(repeats):
        clean_rates.append(good_rate(clean, [True] * len(clean), config))
        storm_rates.append(good_rate(*storm, config))
        ratios.append(storm_rates[-1] / clean_rates[-1])
    median = statistics.median
    return median(clean_rates), median(storm_rates), median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--good", type=int, default=50_000, help="good records per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--formats", nargs="+", default=list(GARBAGE_FORMATS))
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0))
    print(f"machine: {platform.machine()}, {cpu_model()}, {cores} cores, "
          f"python {platform.python_version()}")  # fmt: skip
    print(f"{args.good:,} good flows (demo mix), batches of {BATCH:,} records; good flows/s "
          f"(median of {args.repeats} runs) and the median ratio of a storm run to the clean "
          f"run before it")  # fmt: skip
    for fmt in args.formats:
        config = with_overrides(Config(), kafka={"input_format": fmt})
        good = encoder(fmt)(simulated_flows(args.good))
        labelled = garbage_records(fmt, good, len(good), seed=7)
        mixed = [value for _, value in labelled]
        by_kind = {kind: [v for k, v in labelled if k == kind] for kind in GARBAGE_KINDS}
        del labelled
        clean, storm, ratio = paired_rates(good, interleave(good, mixed), config, args.repeats)
        print(f"{fmt}: 0 % garbage {clean:,.0f}; 50 % garbage (all kinds mixed) {storm:,.0f}, "
              f"ratio {ratio:.2f} (target >= 0.5)")  # fmt: skip
        costs = reject_costs_us(fmt, by_kind)
        print(f"  a good flow costs {1e6 / clean:.1f} us (decode + state + scoring)")
        for kind in GARBAGE_KINDS:
            # 50 % of one kind: the same good records, each followed by one bad record.
            bad = [by_kind[kind][k % len(by_kind[kind])] for k in range(len(good))]
            _, rate, ratio = paired_rates(good, interleave(good, bad), config, args.repeats)
            print(f"  50 % {kind:<12} {rate:>9,.0f} good flows/s, ratio {ratio:.2f}; "
                  f"{costs[kind]:.1f} us per rejected record")  # fmt: skip


if __name__ == "__main__":
    main()
