"""Scale-out on a real broker with real processes: unkeyed records spread over 4 partitions,
read by `beaconwatch run --workers 2`; a third instance joins mid-stream, then is killed -9.

The collectors' records carry no key and land on every partition, as goflow2 and nfacctd
write them by default. Through the repartition stage every host's flows still meet in one
detector partition: every planted beacon is alerted, as one alert series (one "new" per
pair), no host is seen on two partitions, nothing is dead-lettered and every record is
committed. The supervisor's single /metrics endpoint carries every worker's metrics."""

from __future__ import annotations

import asyncio
import random
import signal
import socket
import sys
import urllib.request
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.conftest import produce
from tests.integration.test_checkpoints import BEACONS, flows
from tests.integration.test_kill9 import committed_through, service_env

if TYPE_CHECKING:
    from tests.integration.conftest import KafkaTestKit

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def start(kit: KafkaTestKit, workers: int, port: int) -> asyncio.subprocess.Process:
    env = {**service_env(kit), "BEACONWATCH_METRICS__PORT": str(port)}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "beaconwatch", "run", "--workers", str(workers),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL, env=env,
    )  # fmt: skip


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


async def produce_unkeyed(kit: KafkaTestKit, records: list[tuple[bytes, bytes]], seed: int) -> None:
    """Each record without a key, on a random partition of the 4."""
    rng = random.Random(seed)
    by_partition: dict[int, list[tuple[bytes | None, bytes | None]]] = defaultdict(list)
    for _, value in records:
        by_partition[rng.randrange(4)].append((None, value))
    for partition, part in sorted(by_partition.items()):
        await produce(kit.broker, kit.names.input, part, partition=partition)


async def alerts_so_far(kit: KafkaTestKit) -> list[dict[str, Any]]:
    published = await kit.read_topic(kit.names.alerts, expected=len(BEACONS))
    return [orjson.loads(r.value or b"{}") for r in published]


def new_alerts(docs: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    new: dict[tuple[str, str], int] = defaultdict(int)
    for doc in docs:
        new[doc["source"]["ip"], doc["destination"]["ip"]] += doc["beacon"]["lifecycle"] == "new"
    return new


async def wait_ready(port: int, timeout_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        assert asyncio.get_running_loop().time() < deadline, f"port {port} never ready"
        await asyncio.sleep(0.3)


@pytest.mark.timeout(300)
async def test_unkeyed_input_two_workers_an_instance_joining_and_killed(
    kit: KafkaTestKit,
) -> None:
    await kit.make_input_topic(4)
    parts = [flows(0, 6, 21), flows(6, 9, 22), flows(9, 13, 23), flows(13, 16, 24)]
    await produce_unkeyed(kit, parts[0], seed=1)
    port, joiner_port = free_port(), free_port()
    pool = await start(kit, 2, port)
    joiner = None
    try:
        await wait_ready(port, 90)
        await committed_through(kit, timeout_s=90)
        samples = scrape(port)
        workers = {dict(labels).get("worker") for (_, labels) in samples}
        assert {"0", "1"} <= workers  # one endpoint, both workers' metrics
        assert total(samples, "beaconwatch_flows_consumed_total") == len(parts[0])

        joiner = await start(kit, 1, joiner_port)  # a second instance joins mid-stream
        await wait_ready(joiner_port, 90)  # the rebalance is done: it holds partitions
        # It took over partitions with their history: restored from the checkpoints the
        # pool wrote when they were revoked.
        restored = scrape(joiner_port)
        assert sum(v for (n, labels), v in restored.items()
                   if n == "beaconwatch_checkpoint_restores_total"
                   and ("result", "restored") in labels) >= 1  # fmt: skip
        await produce_unkeyed(kit, parts[1], seed=2)
        await committed_through(kit, timeout_s=90)
        await produce_unkeyed(kit, parts[2], seed=3)
        await committed_through(kit, timeout_s=90)
        # Thirteen check-ins by now, seven of them after the join: fewer than min_events (8),
        # so a beacon whose partition moved is alerted only if its history moved with it.
        # (Not asserted earlier: three repartition processes write each internal partition,
        # so flows arrive a little out of order and a pair's first scoring may fall short
        # until its next rescoring; at the twelfth, 1 run in 5 under the full suite.)
        alerted = {pair for pair, count in new_alerts(await alerts_so_far(kit)).items() if count}
        assert alerted == {(src, dst) for src, dst, _ in BEACONS}
        joiner.send_signal(signal.SIGKILL)  # ... and dies: its partitions go to the pool
        assert await asyncio.wait_for(joiner.wait(), 10) == -signal.SIGKILL
        joiner = None
        await produce_unkeyed(kit, parts[3], seed=4)
        await committed_through(kit, timeout_s=120)
        samples = scrape(port)
        assert total(samples, "beaconwatch_hosts_split_total") == 0
        assert total(samples, "beaconwatch_dead_letter_records_total") == 0
    finally:
        if joiner is not None:
            joiner.send_signal(signal.SIGKILL)
            await joiner.wait()
        pool.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(pool.wait(), 60) == 0

    docs = await alerts_so_far(kit)
    series: dict[tuple[str, str], set[str]] = defaultdict(set)
    for doc in docs:
        series[doc["source"]["ip"], doc["destination"]["ip"]].add(doc["beacon"]["series_id"])
    assert set(series) == {(src, dst) for src, dst, _ in BEACONS}  # every beacon, nothing else
    assert all(len(ids) == 1 for ids in series.values()), series
    new = new_alerts(docs)
    assert all(count == 1 for count in new.values()), new  # no second "new" after the faults
    ends = await kit.end_offsets(kit.names.input)
    assert await kit.committed_offsets() == {p: e for p, e in ends.items() if e}
