"""Partition state checkpointed to the state topic and restored on a real broker: a restart
keeps every pair's history, and records between the checkpoint and the committed offset are
replayed without publishing their alerts again."""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING

import orjson
import pytest
from prometheus_client import CollectorRegistry

from beaconwatch.alerting.alert import Alert
from beaconwatch.runtime.service import BeaconService
from tests.integration.test_service import T0_MS, Record, flow_json

if TYPE_CHECKING:
    from tests.integration.conftest import KafkaTestKit

pytestmark = pytest.mark.integration

BEACONS = [(f"10.0.0.{20 + i}", f"203.0.113.{60 + i}", 443) for i in range(4)]
MINUTE_MS = 60_000


def flows(start_min: int, end_min: int, seed: int) -> list[Record]:
    """Check-ins of the four beacons every 60 s (+/- 5 %) and browsing noise, in time order."""
    rng = random.Random(seed)
    events = []
    for src, dst, port in BEACONS:
        for minute in range(start_min, end_min):
            t = T0_MS + minute * MINUTE_MS + int(rng.uniform(-3000, 3000)) + 5000
            events.append((t, src, dst, port, 700 + rng.randint(-10, 10)))
    t = float(T0_MS + start_min * MINUTE_MS)
    while True:
        t += rng.expovariate(1 / 5_000)
        if t >= T0_MS + end_min * MINUTE_MS:
            break
        src = f"10.1.0.{rng.randint(1, 40)}"
        events.append((int(t), src, f"100.64.0.{rng.randint(1, 200)}", 443, rng.randint(300, 9000)))
    events.sort()
    return [
        (f"{s}>{d}:{p}/6".encode(), flow_json(t, s, d, p, n, rng.randint(32768, 60999)))
        for t, s, d, p, n in events
    ]


def restores(service: BeaconService, result: str) -> float:
    from tests.integration.conftest import metric

    return metric(service.registry, "beaconwatch_checkpoint_restores_total", result=result)


async def test_restart_restores_state_and_replays_without_publishing_again(
    kit: KafkaTestKit,
) -> None:
    names = kit.names
    await kit.make_input_topic(2)
    # The detector reads the input itself (keyed input): its partitions are the topic's two,
    # and what is replayed is exactly the records produced. test_kill9 runs the default path.
    state = {
        "state_topic": f"{names.input}-state",
        "state_topic_partitions": 3,
        "input_keyed_by_host": True,
    }
    first, second, third = flows(0, 6, 1), flows(6, 12, 2), flows(12, 20, 3)

    # Run 1: six check-ins per beacon (too few to alert), then a graceful stop: checkpoints.
    await kit.produce(names.input, first)
    async with kit.running(kit.config(**state, checkpoint_interval_s=0.2)) as run:
        await kit.wait_until(lambda: run.consumed() == len(first), what="first part consumed")
        await asyncio.sleep(0.6)  # a periodic checkpoint after the last batch
        written = kit.metric(
            run.service.registry, "beaconwatch_checkpoints_total", result="written"
        )
        assert written >= 2  # both input partitions
        await asyncio.sleep(1.5)  # seven more intervals, nothing new to read
    assert run.alerts == []
    # Partitions with nothing new since their checkpoint are not written again (nor at stop).
    again = kit.metric(run.service.registry, "beaconwatch_checkpoints_total", result="written")
    assert again == written

    # Run 2: restored, so the beacons alert with 6 more check-ins; from empty state they could
    # not (min_events is 8). Then it dies without its shutdown checkpoint (and checkpoints
    # only every hour otherwise).
    await kit.produce(names.input, second)
    rare = kit.config(**state, checkpoint_interval_s=3600)
    alerts: list[Alert] = []
    service = BeaconService(rare, registry=CollectorRegistry(), alert_listener=alerts.extend)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await kit.wait_until(lambda: service.ready, timeout_s=30, what="second run ready")
    total = len(first) + len(second)
    ends = await kit.end_offsets(names.input)
    assert sum(ends.values()) == total
    await kit.wait_until(
        lambda: {tp.partition: o for tp, o in service.committed_offsets.items()} == ends,
        timeout_s=30, what="second part committed",
    )  # fmt: skip
    assert restores(service, "restored") == 2
    assert {(a.src_ip, a.dst_ip, a.dst_port) for a in alerts} == set(BEACONS)
    assert all(a.lifecycle == "new" for a in alerts)
    # Run 2 read only 6 check-ins per beacon, fewer than min_events: the alerts count run 1's.
    assert all(a.stats.check_ins > 6 for a in alerts)
    task.cancel()  # a crash: no shutdown checkpoint, the state topic still says "end of run 1"
    with pytest.raises(asyncio.CancelledError):
        await task

    # Run 3: restores run 1's checkpoint, replays the second part silently (its alerts are
    # on the topic already), then reads on. Nothing is published twice.
    await kit.produce(names.input, third)
    async with kit.running(kit.config(**state)) as run:
        everything = total + len(third)
        await kit.wait_until(lambda: run.consumed() == len(second) + len(third),
                             timeout_s=60, what="replayed and read on")  # fmt: skip
        replayed = kit.metric(run.service.registry, "beaconwatch_records_replayed_total")
        assert replayed == len(second)
        assert restores(run.service, "restored") == 2
    assert run.alerts == []  # already alerted, within the cooldown: nothing new, nothing again
    published = await kit.read_topic(names.alerts, expected=len(BEACONS))
    docs = [orjson.loads(r.value) for r in published]
    assert len(docs) == len(BEACONS)
    assert len({d["event"]["id"] for d in docs}) == len(BEACONS)
    committed = await kit.committed_offsets()
    assert sum(committed.values()) == everything
