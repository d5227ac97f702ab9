"""Good-flow throughput of the real service under a storm of bad records, end to end.

Usage: python bench/storm_end_to_end.py [--records N] [--repeats R]

Fills two topics on the embedded Tansu broker: N simulated goflow2 JSON records, and the same
N records interleaved one for one with N bad ones (`simulate.garbage`: random bytes, cut-short
records, wrong field types, invalid UTF-8, another format; the 64 KiB oversized kind is left
out, since a storm of those measures the broker's bandwidth, not beaconwatch). Then the
service (decode, state, scoring, alerts, one dead letter with Kafka-Connect headers per bad
record, offset commits) reads each topic in a fresh process. Good flows per second, from the
first record to the last, clean vs storm: the issue's target is a ratio of at least 0.5.

A bare aiokafka consumer reads both topics too, in the same process setup: every record, good
or bad, costs the Kafka client the same, so its own good-flow ratio is the ceiling any
consumer of these topics can reach here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
from itertools import islice

from aiokafka import AIOKafkaProducer

from beaconwatch.config import Config, with_overrides
from beaconwatch.embedded.tansu import EmbeddedBroker
from beaconwatch.runtime.topics import create_topics
from beaconwatch.simulate.garbage import garbage_records
from beaconwatch.simulate.generator import SimulationSpec, TrafficSimulator
from end_to_end import raw_consume, service_in_child

CLEAN, STORM = "bench.clean", "bench.storm"


async def fill(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks=1, linger_ms=20, max_batch_size=1 << 20
    )
    await producer.start()
    try:
        for lo in range(0, len(values), 20_000):
            await asyncio.gather(*[await producer.send(topic, v) for v in values[lo : lo + 20_000]])
    finally:
        await producer.stop()


async def main_async(args: argparse.Namespace) -> None:
    spec = SimulationSpec(seed=11, hosts=2_000, beacons=40, duration_s=None)
    good = [r.value for r in islice(TrafficSimulator(spec).records(), args.records)]
    kinds = garbage_records("goflow2-json", good, args.records * 6 // 5 + 6)
    bad = [v for kind, v in kinds if kind != "oversized"][: args.records]
    storm = [v for pair in zip(good, bad, strict=True) for v in pair]
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        await create_topics(bootstrap, {CLEAN: 1, STORM: 1})
        await fill(bootstrap, CLEAN, good)
        await fill(bootstrap, STORM, storm)
        base = with_overrides(
            Config(),
            kafka={"bootstrap_servers": bootstrap, "alerts_topic": "bench.alerts",
                   "dead_letter_topic": "bench.dlq"},
            metrics={"port": 0, "host": "127.0.0.1"},
        )  # fmt: skip
        clean_rates: list[float] = []
        storm_rates: list[float] = []
        for run in range(args.repeats):
            for topic, total, rates in ((CLEAN, len(good), clean_rates),
                                        (STORM, len(storm), storm_rates)):  # fmt: skip
                config = with_overrides(
                    base, kafka={"input_topics": [topic], "group_id": f"{topic}-{run}"}
                )
                records_per_s, _, _ = service_in_child(config, total)
                rates.append(records_per_s * len(good) / total)  # good flows per second
        raw_clean = max([await raw_consume(bootstrap, len(good), base, CLEAN)
                         for _ in range(args.repeats)])  # fmt: skip
        raw_storm = max([await raw_consume(bootstrap, len(storm), base, STORM)
                         for _ in range(args.repeats)]) * len(good) / len(storm)  # fmt: skip
        clean, stormy = max(clean_rates), max(storm_rates)
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
              f"python {platform.python_version()}; {len(good):,} good records + "
              f"{len(bad):,} bad, embedded Tansu broker, best of {args.repeats}")  # fmt: skip
        print(f"clean: {clean:,.0f} good flows/s")
        print(f"50 % bad: {stormy:,.0f} good flows/s = {stormy / clean:.2f} x clean")
        print(f"bare aiokafka consumer, no processing: clean {raw_clean:,.0f} records/s, "
              f"50 % bad {raw_storm:,.0f} good records/s = {raw_storm / raw_clean:.2f} x clean "
              f"(the client's ceiling)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=2)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
