"""kill -9 of a real `beaconwatch run` process mid-stream, then a restart, on a real broker.

Before the kill the beacons have 7 check-ins, one short of min_events, so the killed process
cannot alert them; after it, the restarted process reads at most 7 more. It alerts them only
if it resumed each partition from its last checkpoint. No pair may get a second alert series,
and every record is committed in the end."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import defaultdict
from typing import TYPE_CHECKING

import orjson
import pytest
from aiokafka.errors import KafkaError

from tests.integration.conftest import FAST_GROUP
from tests.integration.test_checkpoints import BEACONS, flows

if TYPE_CHECKING:
    from tests.integration.conftest import KafkaTestKit

pytestmark = pytest.mark.integration


def service_env(kit: KafkaTestKit) -> dict[str, str]:
    names = kit.names
    settings = {
        "KAFKA__BOOTSTRAP_SERVERS": kit.broker.bootstrap_servers,
        "KAFKA__INPUT_TOPICS": f'["{names.input}"]',
        "KAFKA__ALERTS_TOPIC": names.alerts,
        "KAFKA__DEAD_LETTER_TOPIC": names.dead_letter,
        "KAFKA__GROUP_ID": names.group,
        "KAFKA__INTERNAL_TOPIC": internal_topic(kit),
        "KAFKA__INTERNAL_TOPIC_PARTITIONS": "4",
        "KAFKA__FETCH_MAX_WAIT_MS": "100",
        "KAFKA__STATE_TOPIC": f"{names.input}-state",
        "KAFKA__STATE_TOPIC_PARTITIONS": "2",
        "KAFKA__CHECKPOINT_INTERVAL_S": "1.0",
        "KAFKA__POLL_TIMEOUT_MS": "100",
        "KAFKA__SESSION_TIMEOUT_MS": str(FAST_GROUP["session_timeout_ms"]),
        "KAFKA__HEARTBEAT_INTERVAL_MS": str(FAST_GROUP["heartbeat_interval_ms"]),
        "METRICS__HOST": "127.0.0.1",
        "METRICS__PORT": "0",
    }
    return {**os.environ, **{f"BEACONWATCH_{k}": v for k, v in settings.items()}}


async def start(kit: KafkaTestKit) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "beaconwatch", "run", "--workers", "1",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        env=service_env(kit),
    )  # fmt: skip


def internal_topic(kit: KafkaTestKit) -> str:
    return f"{kit.names.group}.internal"


async def group_committed(kit: KafkaTestKit, group: str, topic: str) -> dict[int, int]:
    from tests.integration.conftest import committed_offsets

    try:
        return await committed_offsets(kit.broker, group, topic)
    except KafkaError:  # the group's coordinator is not there yet (Apache Kafka)
        return {}


async def committed_through(kit: KafkaTestKit, timeout_s: float) -> None:
    """Wait until the repartition stage committed every input record, then the detector
    every internal-topic record written by then: every flow went all the way through."""
    names = kit.names
    deadline = asyncio.get_running_loop().time() + timeout_s
    for group, topic in (
        (names.group, names.input),
        (f"{names.group}.detect", internal_topic(kit)),
    ):
        ends = await kit.end_offsets(topic)
        while True:
            committed = await group_committed(kit, group, topic)
            if all(committed.get(p, 0) >= end for p, end in ends.items()):
                break
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"{group} committed {committed} of {topic}, wanted {ends}")
            await asyncio.sleep(0.2)


@pytest.mark.timeout(240)
async def test_kill_9_mid_stream_and_restart_keeps_history_and_alerts_once(
    kit: KafkaTestKit,
) -> None:
    names = kit.names
    await kit.make_input_topic(4)
    first, second, third = flows(0, 5, 11), flows(5, 7, 12), flows(7, 12, 13)
    await kit.produce(names.input, first)
    proc = await start(kit)
    try:
        await committed_through(kit, timeout_s=90)
        await asyncio.sleep(2.5)  # a periodic checkpoint (every 1 s) covers the first part
        before = sum((await kit.committed_offsets()).values())
        await kit.produce(names.input, second)
        deadline = asyncio.get_running_loop().time() + 30
        while sum((await kit.committed_offsets()).values()) == before:  # kill once it moves
            assert asyncio.get_running_loop().time() < deadline, "second part never committed"
            await asyncio.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL

    # The restarted process reads at most the second and third parts: 7 check-ins per
    # beacon, fewer than min_events (8). It alerts only with the history it restored.
    await kit.produce(names.input, third)
    proc = await start(kit)
    try:
        await committed_through(kit, timeout_s=90)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0

    published = await kit.read_topic(names.alerts, expected=len(BEACONS))
    docs = [orjson.loads(r.value) for r in published if r.value is not None]
    series: dict[tuple[str, str], set[str]] = defaultdict(set)
    new_ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    for doc in docs:
        pair = (doc["source"]["ip"], doc["destination"]["ip"])
        series[pair].add(doc["beacon"]["series_id"])
        if doc["beacon"]["lifecycle"] == "new":
            new_ids[pair].add(doc["event"]["id"])
    assert set(series) == {(src, dst) for src, dst, _ in BEACONS}
    # At-least-once may repeat an alert (same id) sent before the kill but not committed;
    # never a second series or a second "new".
    assert all(len(ids) == 1 for ids in series.values()), series
    assert all(len(ids) == 1 for ids in new_ids.values()), new_ids
    assert all(doc["beacon"]["check_ins"] >= 8 for doc in docs)
    assert sum((await kit.committed_offsets()).values()) == len(first) + len(second) + len(third)
