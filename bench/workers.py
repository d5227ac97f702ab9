"""`beaconwatch run --workers 1` against `--workers 2` on the same topic, interleaved.

Usage: python bench/workers.py [--records N] [--format goflow2-pb] [--repeats R]

Fills a 4-partition topic of the embedded broker with N simulated collector records (no keys,
as goflow2 writes by default), then runs the real command (`python -m beaconwatch run`) with
1 and with 2 workers, alternating, each in fresh consumer groups. A run is timed from the
moment its supervisor answers /readyz (every worker joined and holds partitions; kernels
loaded) until the collectors' topic is committed by the repartition stages and the internal
topic by the detector stages: every flow went all the way through. Prints flows/s per run
and the median ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import sys
import time
import urllib.request

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from beaconwatch.embedded.tansu import EmbeddedBroker
from beaconwatch.runtime.topics import create_topics
from beaconwatch.simulate.generator import SimulationSpec
from stages import fill  # bench/: the same records and batching as the stage benchmark

TOPIC = "bench.workers"
PARTITIONS = 4


async def committed(bootstrap: str, group: str, topic: str, partitions: int) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
        return sum(max(0, om.offset) for om in offsets.values())
    except Exception:  # the group does not exist yet
        return 0
    finally:
        await admin.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


async def one_run(bootstrap: str, fmt: str, count: int, workers: int, tag: str) -> float:
    port = free_port()
    group, internal = f"bench-{tag}", f"bench.internal.{tag}"
    env = {
        **os.environ,
        "BEACONWATCH_KAFKA__BOOTSTRAP_SERVERS": bootstrap,
        "BEACONWATCH_KAFKA__INPUT_TOPICS": f'["{TOPIC}"]',
        "BEACONWATCH_KAFKA__INPUT_FORMAT": fmt,
        "BEACONWATCH_KAFKA__GROUP_ID": group,
        "BEACONWATCH_KAFKA__INTERNAL_TOPIC": internal,
        "BEACONWATCH_KAFKA__INTERNAL_TOPIC_PARTITIONS": "4",
        "BEACONWATCH_KAFKA__STATE_TOPIC": f"bench.state.{tag}",
        "BEACONWATCH_KAFKA__ALERTS_TOPIC": "bench.alerts",
        "BEACONWATCH_KAFKA__DEAD_LETTER_TOPIC": "bench.dlq",
        "BEACONWATCH_METRICS__PORT": str(port),
        "BEACONWATCH_LOGGING__LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "beaconwatch", "run", "--workers", str(workers), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        while not ready(port):
            assert proc.returncode is None, "beaconwatch exited"
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        while await committed(bootstrap, group, TOPIC, PARTITIONS) < count:
            await asyncio.sleep(0.05)
        # The detector stages are done when they committed what the repartition stages wrote.
        written = await _end_offsets(bootstrap, internal)
        while await committed(bootstrap, f"{group}.detect", internal, 4) < written:
            await asyncio.sleep(0.05)
        return count / (time.perf_counter() - started)
    finally:
        proc.terminate()
        await proc.wait()


async def _end_offsets(bootstrap: str, topic: str) -> int:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(4)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        while any(consumer.highwater(tp) is None for tp in tps):
            await consumer.getmany(timeout_ms=100, max_records=1)
        return sum(int(consumer.highwater(tp)) for tp in tps)
    finally:
        await consumer.stop()


async def main_async(args: argparse.Namespace) -> None:
    with EmbeddedBroker() as broker:
        bootstrap = broker.bootstrap_servers
        await create_topics(bootstrap, {TOPIC: PARTITIONS})
        spec = SimulationSpec(seed=13, hosts=5_000, beacons=50, duration_s=None)
        await fill(bootstrap, TOPIC, args.format, args.records, spec, PARTITIONS)
        rates: dict[int, list[float]] = {1: [], 2: []}
        for run in range(args.repeats):
            for workers in (1, 2):
                rate = await one_run(
                    bootstrap, args.format, args.records, workers, f"{workers}-{run}"
                )
                rates[workers].append(rate)
                print(f"run {run}: {workers} worker(s) {rate:,.0f} records/s", flush=True)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores (broker on the same machine), "
        f"python {platform.python_version()}; {args.records:,} {args.format} records, "
        f"{PARTITIONS} partitions; medians of {args.repeats} interleaved runs"
    )
    print(f"1 worker: {one:,.0f} records/s; 2 workers: {two:,.0f} records/s = {two / one:.2f} x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=600_000)
    parser.add_argument("--format", default="goflow2-pb")
    parser.add_argument("--repeats", type=int, default=3)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
