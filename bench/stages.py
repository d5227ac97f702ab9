"""Throughput of each stage on the embedded broker, against a bare aiokafka consumer.

Usage: python bench/stages.py [--records N] [--partitions P] [--repeats R]

1. fills a topic with N simulated goflow2 records per format (JSON and protobuf);
2. repartition stage (`--role repartition`) reading that topic, vs a bare AIOKafkaConsumer
   reading it (same client and fetch settings, does nothing else): records/s, and the ratio;
3. detector stage (`--role detect`) reading the internal topic the repartition stage wrote,
   vs a bare consumer of it: flows/s (each internal record holds thousands of flows);
4. the detector stage with checkpoints every second vs none, interleaved, on the same topic.
Every rate is timed from the first record to the last, in a fresh process per run (spawn), so
group joins and numba loading do not count. Repeats alternate A and B; medians are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import multiprocessing
import os
import platform
import statistics
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry

from beaconwatch.config import Config, with_overrides
from beaconwatch.embedded.tansu import EmbeddedBroker
from beaconwatch.runtime.service import BeaconService
from beaconwatch.runtime.topics import create_topics
from beaconwatch.simulate.encoders import encoder
from beaconwatch.simulate.generator import SimulationSpec, TrafficSimulator


async def fill(
    bootstrap: str,
    topic: str,
    fmt: str,
    count: int,
    spec: SimulationSpec | None = None,
    partitions: int | None = None,
) -> None:
    """``count`` simulated records of ``fmt``, without keys; spread round-robin over
    ``partitions`` (None: where the producer puts key-less records)."""
    spec = spec or SimulationSpec(seed=11, hosts=2_000, beacons=40, duration_s=None)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=20, max_batch_size=1 << 20
    )
    await producer.start()
    try:
        pending, sent = [], 0
        for _, chunk in TrafficSimulator(spec).flow_chunks():
            for value in encoder(fmt)(chunk):
                partition = None if partitions is None else sent % partitions
                pending.append(await producer.send(topic, value, partition=partition))
                sent += 1
                if sent >= count:
                    break
            if len(pending) >= 20_000 or sent >= count:
                await asyncio.gather(*pending)
                pending.clear()
            if sent >= count:
                break
    finally:
        await producer.stop()


async def bare(
    bootstrap: str,
    topic: str,
    count: int,
    config: Config,
    group: str,
    from_assignment: bool = False,
) -> float:
    """Records/s of a bare aiokafka consumer reading ``count`` records of ``topic``."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=config.kafka.max_partition_fetch_bytes,
        fetch_max_wait_ms=config.kafka.fetch_max_wait_ms,
    )
    await consumer.start()
    seen, first = 0, 0.0
    try:
        while from_assignment and not consumer.assignment():
            await asyncio.sleep(0.002)
        if from_assignment:
            first = time.perf_counter()
        while seen < count:
            batch = await consumer.getmany(
                timeout_ms=config.kafka.poll_timeout_ms, max_records=config.kafka.max_batch_records
            )
            got = sum(len(msgs) for msgs in batch.values())
            if got and not first:
                first = time.perf_counter()
            seen += got
    finally:
        await consumer.stop()
    return count / (time.perf_counter() - first)


async def stage(
    config: Config, role: str, metric: str, count: int, from_assignment: bool = False
) -> float:
    """Units/s of one stage of ``role``, counted by ``metric``, until ``count``: from its
    first unit (or, ``from_assignment``, from when its partitions were assigned)."""
    registry = CollectorRegistry()
    service = BeaconService(config, role=role, registry=registry)  # type: ignore[arg-type]
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    first = 0.0
    try:
        while True:
            done = registry.get_sample_value(metric) or 0
            started = done or (
                from_assignment and registry.get_sample_value("beaconwatch_partitions_assigned")
            )
            if started and not first:
                first = time.perf_counter()
            if done >= count:
                break
            if task.done():
                task.result()
                raise RuntimeError("service stopped early")
            await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - first
    finally:
        stop.set()
        await task
    return count / elapsed


def _child(job: tuple[Any, ...], out: Any) -> None:
    faulthandler.enable()  # a native crash prints where it happened
    kind, *args = job
    if kind == "bare":
        out.put(asyncio.run(bare(*args)))
    else:
        out.put(asyncio.run(stage(*args)))


def _fresh_groups(job: tuple[Any, ...], attempt: int) -> tuple[Any, ...]:
    """A rerun reads everything again, in consumer groups of its own."""
    if attempt == 0:
        return job
    if job[0] == "bare":
        return (*job[:5], f"{job[5]}-rerun{attempt}", *job[6:])
    config: Config = job[1]
    kafka = config.kafka
    groups = {"group_id": f"{kafka.group_id}-rerun{attempt}",
              "detect_group_id": f"{kafka.detect_group}-rerun{attempt}"}  # fmt: skip
    return (job[0], with_overrides(config, kafka=groups), *job[2:])


def in_child(*job: Any) -> float:
    """Run one measurement in a fresh process; a run whose process dies without a result
    (it happened once: a segfault inside a bare aiokafka consumer) is reported and rerun."""
    ctx = multiprocessing.get_context("spawn")
    for attempt in range(3):
        queue = ctx.Queue()
        child = ctx.Process(target=_child, args=(_fresh_groups(job, attempt), queue))
        child.start()
        while True:
            try:
                result: float = queue.get(timeout=1.0)
            except Exception:  # queue.Empty
                if child.is_alive():
                    continue
                print(f"  ({job[0]} run died with exit code {child.exitcode}; rerun)", flush=True)
                break
            child.join()
            return result
    raise RuntimeError(f"{job[0]} run died three times")


async def fill_internal(config: Config, flow_count: int) -> int:
    """Write about ``flow_count`` simulated flows to the internal topic as the repartition
    stage would (decoded, scoped, keyed by host); returns the records written."""
    from beaconwatch.core.repartition import Repartitioner

    kafka = config.kafka
    await create_topics(kafka.bootstrap_servers, {kafka.internal_topic: 4})
    spec = SimulationSpec(seed=12, hosts=2_000, beacons=40, duration_s=None)
    rep = Repartitioner(config, partitions=4, max_record_bytes=kafka.producer_batch_bytes - 512)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap_servers, acks=1, max_batch_size=1 << 20
    )
    await producer.start()
    written = flows = 0
    batch: list[bytes] = []
    try:
        pending = []
        for _, chunk in TrafficSimulator(spec).flow_chunks():
            batch.extend(encoder("goflow2-pb")(chunk))
            if len(batch) < kafka.max_batch_records:
                continue  # one poll's worth, as the repartition stage writes them
            scoped = rep.scope_records(batch, "x")
            batch = []
            for partition, values in rep.group([scoped.flows]).items():
                for value in values:
                    pending.append(
                        await producer.send(kafka.internal_topic, value, partition=partition)
                    )
                    written += 1
            flows += len(scoped.flows)
            if flows >= flow_count:
                break
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return written


def internal_flows(config: Config, bootstrap: str) -> int:
    """Flows the internal topic holds (from its record headers: n per record)."""

    async def count() -> int:
        from beaconwatch.decode.flow_columns import HEADER_BYTES

        consumer = AIOKafkaConsumer(
            config.kafka.internal_topic,
            bootstrap_servers=bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        total, idle = 0, 0
        try:
            while idle < 5:
                batch = await consumer.getmany(timeout_ms=200)
                if not batch:
                    idle += 1
                for msgs in batch.values():
                    for m in msgs:
                        assert m.value is not None and len(m.value) >= HEADER_BYTES
                        total += int.from_bytes(m.value[4:8], "little")
        finally:
            await consumer.stop()
        return total

    return asyncio.run(count())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=300_000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--flows", type=int, default=1_000_000, help="for the detector stage")
    parser.add_argument("--part", choices=("all", "repartition", "detect"), default="all")
    args = parser.parse_args()
    n, reps = args.records, args.repeats
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, python "
        f"{platform.python_version()}; {n:,} records per format, {args.partitions} input "
        f"partitions, embedded Tansu broker; medians of {reps} interleaved runs"
    )
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        for fmt in ("goflow2-json", "goflow2-pb") if args.part != "detect" else ():
            topic = f"bench.{fmt}"
            base = with_overrides(
                Config(),
                kafka={
                    "bootstrap_servers": bootstrap,
                    "input_topics": [topic],
                    "input_format": fmt,
                    "alerts_topic": "bench.alerts",
                    "dead_letter_topic": "bench.dlq",
                    "internal_topic": f"bench.internal.{fmt}",
                    "internal_topic_partitions": 4,
                    "state_topic": "bench.state",
                },
                metrics={"port": 0, "host": "127.0.0.1"},
            )
            asyncio.run(create_topics(bootstrap, {topic: args.partitions}))
            asyncio.run(fill(bootstrap, topic, fmt, n))
            bare_rates, stage_rates = [], []
            for run in range(reps):
                bare_rates.append(in_child("bare", bootstrap, topic, n, base, f"bare-{fmt}-{run}"))
                cfg = with_overrides(base, kafka={"group_id": f"rep-{fmt}-{run}"})
                stage_rates.append(
                    in_child("stage", cfg, "repartition", "beaconwatch_flows_consumed_total", n)
                )
            raw, rep = statistics.median(bare_rates), statistics.median(stage_rates)
            print(
                f"{fmt}: bare aiokafka {raw:,.0f} records/s; repartition stage {rep:,.0f} "
                f"records/s = {rep / raw:.2f} x bare"
            )
        if args.part == "repartition":
            return
        # The detector stage, on an internal topic of its own.
        det = with_overrides(
            Config(),
            kafka={
                "bootstrap_servers": bootstrap,
                "input_topics": ["bench.unused"],
                "alerts_topic": "bench.alerts",
                "dead_letter_topic": "bench.dlq",
                "internal_topic": "bench.internal.detect",
                "internal_topic_partitions": 4,
                "state_topic": "bench.state",
                "input_format": "goflow2-pb",
            },
            metrics={"port": 0, "host": "127.0.0.1"},
        )
        records = asyncio.run(fill_internal(det, args.flows))
        flows = internal_flows(det, bootstrap)
        on: list[float] = []
        off: list[float] = []
        for run in range(reps):
            for interval, rates in ((0.0, off), (1.0, on)):
                cfg = with_overrides(
                    det,
                    kafka={
                        "detect_group_id": f"det-{interval}-{run}",
                        "checkpoint_interval_s": interval,
                    },
                )
                metric = "beaconwatch_internal_records_consumed_total"
                rate = in_child("stage", cfg, "detect", metric, records, True)
                rates.append(rate * flows / records)
        print(
            f"detector stage from the internal topic ({flows:,} flows in {records:,} records, "
            f"timed from assignment): {statistics.median(off):,.0f} flows/s without "
            f"checkpoints, {statistics.median(on):,.0f} with one every second "
            f"({statistics.median(on) / statistics.median(off) - 1:+.1%}); runs "
            f"{', '.join(f'{r:,.0f}' for r in off)} / {', '.join(f'{r:,.0f}' for r in on)}"
        )


if __name__ == "__main__":
    main()
