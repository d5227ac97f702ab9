"""Checkpoint and restore of one partition holding N pairs, through the embedded broker.

Usage: python bench/restore.py [--pairs N] [--repeats R]

Fills one partition's state with N pairs (one connection each, as `bench/core.py`), writes
its checkpoint to a compacted state topic (`KafkaCheckpointStore.save`: snapshot chunks and a
manifest, acks=all), then, as a newly assigned instance would, reads the latest checkpoint
back from the topic (`load`, a groupless consumer) and restores it into an empty detector.
Prints the snapshot size, the save time, and the restore time split into the Kafka read and
the decode; medians of R repeats. Target (issue 13): restore of 1M pairs under 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time

import numpy as np
from aiokafka import AIOKafkaProducer, TopicPartition

from beaconwatch.config import Config, with_overrides
from beaconwatch.core.detector import Detector
from beaconwatch.domain.flows import FlowBatch
from beaconwatch.embedded.tansu import EmbeddedBroker
from beaconwatch.runtime.checkpoints import Checkpoint, KafkaCheckpointStore
from beaconwatch.runtime.topics import create_topics

TP = TopicPartition("bench.flows", 0)


def filled_detector(config: Config, n_pairs: int) -> Detector:
    rng = np.random.default_rng(1)
    t0 = int(time.time() * 1000) - 3_600_000
    detector = Detector(config)
    for lo in range(0, n_pairs, 100_000):
        n = min(100_000, n_pairs - lo)
        ids = np.arange(lo, lo + n, dtype=np.uint64)
        detector.process(FlowBatch.from_columns(
            start_ms=t0 + np.sort(rng.integers(0, 60_000, n)) + lo,
            src_hi=np.zeros(n), src_lo=(0xFFFF_0A00_0000 + (ids >> 8)), dst_hi=np.zeros(n),
            dst_lo=0xFFFF_CB00_7100 + (ids & 0xFF), src_port=np.full(n, 50_000),
            dst_port=np.full(n, 443), proto=np.full(n, 6), bytes=np.full(n, 300),
        ), partition=("bench.flows", 0))  # fmt: skip
    assert detector.tracked_pairs == n_pairs
    return detector


async def run(args: argparse.Namespace) -> None:
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        state_topic = "bench.state"
        await create_topics(
            bootstrap, {state_topic: 4}, configs={state_topic: {"cleanup.policy": "compact"}}
        )
        config = with_overrides(
            Config(), state={"max_pairs": args.pairs}, kafka={"bootstrap_servers": bootstrap}
        )
        detector = filled_detector(config, args.pairs)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", max_batch_size=1 << 20)
        await producer.start()
        store = KafkaCheckpointStore(
            producer, state_topic, 4, {"bootstrap_servers": bootstrap}, group="bench"
        )
        saves, reads, decodes = [], [], []
        size = 0
        try:
            for _ in range(args.repeats):
                started = time.perf_counter()
                data = detector.snapshot_partition(("bench.flows", 0), input_offset=123)
                size = await store.save(TP, data, 123)
                saves.append(time.perf_counter() - started)
                del data
                started = time.perf_counter()
                found = (await store.load([TP]))[TP]
                reads.append(time.perf_counter() - started)
                assert isinstance(found, Checkpoint), found
                fresh = Detector(config)
                started = time.perf_counter()
                fresh.restore_partition(("bench.flows", 0), found.data)
                decodes.append(time.perf_counter() - started)
                assert fresh.tracked_pairs == args.pairs
                del fresh, found
        finally:
            await producer.stop()
    read, decode = statistics.median(reads), statistics.median(decodes)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}; embedded Tansu broker; medians of {args.repeats}"
    )
    print(
        f"{args.pairs:,} pairs: checkpoint {size / 1e6:,.0f} MB written in "
        f"{statistics.median(saves):.1f} s (snapshot + acks=all); restore {read + decode:.1f} s "
        f"= read from the state topic {read:.1f} s + decode {decode:.1f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
