"""End-to-end throughput through the embedded broker, against the raw aiokafka consume rate.

Usage: python bench/end_to_end.py [--records N] [--partitions P]

1. starts the embedded Tansu broker and fills a topic with N simulated goflow2 JSON records;
2. yardstick: a bare AIOKafkaConsumer (same client, same fetch settings as the service) reads
   the whole topic with `getmany` and does nothing else;
3. the service: `BeaconService` with both stages (repartition: decode, scope, write keyed by
   host to the internal topic; detector: state, scoring, alerts, dead letters, checkpoints,
   offset commits, metrics) reads the same topic in its own consumer group, until the
   detector has read everything the repartition stage wrote.
Both rates are timed from the first record received to the last, so group join time does not
count for either. The ratio of the two is the figure the README quotes.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import resource
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry

from beaconwatch.config import Config, with_overrides
from beaconwatch.embedded.tansu import EmbeddedBroker
from beaconwatch.runtime.service import BeaconService
from beaconwatch.runtime.topics import create_topics
from beaconwatch.simulate.generator import SimulationSpec, TrafficSimulator

TOPIC = "bench.flows"


async def fill_topic(bootstrap: str, count: int) -> float:
    spec = SimulationSpec(seed=11, hosts=2_000, beacons=40, duration_s=None)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=20, max_batch_size=1 << 20
    )
    await producer.start()
    start = time.perf_counter()
    try:
        pending = []
        for i, record in enumerate(TrafficSimulator(spec).records()):
            if i >= count:
                break
            pending.append(await producer.send(TOPIC, record.value, key=record.key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return count / (time.perf_counter() - start)


async def raw_consume(bootstrap: str, count: int, config: Config, topic: str = TOPIC) -> float:
    """Records/s of a bare aiokafka consumer reading ``topic``: the client's own ceiling."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{topic}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=config.kafka.max_partition_fetch_bytes,
    )
    await consumer.start()
    seen, first = 0, 0.0
    try:
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


async def service_consume(config: Config, count: int) -> tuple[float, int]:
    registry = CollectorRegistry()
    service = BeaconService(config, registry=registry)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    first = 0.0
    try:
        while True:
            consumed = registry.get_sample_value("beaconwatch_flows_consumed_total") or 0
            if consumed and not first:
                first = time.perf_counter()
            # Both stages done: every record read, and every internal record the repartition
            # stage wrote read by the detector stage.
            written = registry.get_sample_value("beaconwatch_repartition_records_total") or 0
            detected = registry.get_sample_value("beaconwatch_internal_records_consumed_total")
            if consumed >= count and (detected or 0) >= written:
                break
            if task.done():
                task.result()
                raise RuntimeError("service stopped early")
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - first
    finally:
        stop.set()
        await task
    alerts = sum(
        s.value
        for m in registry.collect()
        if m.name == "beaconwatch_alerts"
        for s in m.samples
        if s.name.endswith("_total")
    )
    return count / elapsed, int(alerts)


def _service_child(config: Config, count: int, out: Any) -> None:
    rate, alerts = asyncio.run(service_consume(config, count))
    out.put((rate, alerts, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def service_in_child(config: Config, count: int) -> tuple[float, int, float]:
    """The service in a fresh process, as it runs in production: its peak RSS is its own."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_service_child, args=(config, count, queue))
    child.start()
    result: tuple[float, int, float] = queue.get()
    child.join()
    return result


async def main_async(args: argparse.Namespace) -> None:
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        await create_topics(bootstrap, {TOPIC: args.partitions})
        produce_rate = await fill_topic(bootstrap, args.records)
        config = with_overrides(
            Config(),
            kafka={
                "bootstrap_servers": bootstrap,
                "input_topics": [TOPIC],
                "group_id": "bench-service",
                "alerts_topic": "bench.alerts",
                "dead_letter_topic": "bench.dlq",
            },
            metrics={"port": 0, "host": "127.0.0.1"},
        )
        raw_rates, service_rates, peaks = [], [], []
        for run in range(args.repeats):
            # Fresh groups each run so every run reads the whole topic.
            run_config = with_overrides(config, kafka={"group_id": f"bench-service-{run}"})
            raw_rates.append(await raw_consume(bootstrap, args.records, config))
            rate, alerts, peak_mib = service_in_child(run_config, args.records)
            service_rates.append(rate)
            peaks.append(peak_mib)
        raw, service = max(raw_rates), max(service_rates)
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
              f"python {platform.python_version()}; {args.records:,} records, "
              f"{args.partitions} partition(s), embedded Tansu broker")  # fmt: skip
        print(f"producer (setup, acks=1): {produce_rate:,.0f} records/s")
        print(f"raw aiokafka consume: {raw:,.0f} records/s (best of {args.repeats})")
        print(f"beaconwatch end to end: {service:,.0f} flows/s (best of {args.repeats}; "
              f"{alerts} alerts) = {service / raw:.2f} x raw")  # fmt: skip
        print(f"peak RSS of the service process: {max(peaks):.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--partitions", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
