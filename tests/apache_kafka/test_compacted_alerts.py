"""The alerts topic can be compacted: alerts are keyed by pair, so Apache Kafka's log cleaner
keeps each pair's latest alert and drops what it superseded. A compacted alerts topic is then a
table of current beacons that a SIEM (or a restarted consumer) reads from the start."""

from __future__ import annotations

import asyncio
import random

import orjson
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.integration.conftest import KafkaTestKit
from tests.integration.test_service import T0_MS, Record, flow_json

pytestmark = pytest.mark.integration

# Segments roll on the first append after segment.ms; the cleaner compacts every closed segment
# as soon as any of it is dirty (the broker's cleaner wakes every 200 ms in the harness).
COMPACTED = {
    "cleanup.policy": "compact",
    "segment.ms": "1000",
    "min.cleanable.dirty.ratio": "0.01",
    "min.compaction.lag.ms": "0",
    "delete.retention.ms": "0",
}
SLEEP_CHANGES = [("10.0.0.21", "203.0.113.21", 443), ("10.0.0.22", "203.0.113.22", 443)]
LATE_BEACON = ("10.0.0.23", "203.0.113.23", 443)


def beacon(
    rng: random.Random, pair: tuple[str, str, int], start_ms: int, period_s: float, n: int
) -> list[tuple[int, str, str, int]]:
    """``n`` check-ins every ``period_s`` (+/- 5 % jitter) from ``start_ms``."""
    src, dst, port = pair
    offsets_s = [period_s * (i + rng.uniform(-0.05, 0.05)) for i in range(n)]
    return [(start_ms + int(1000 * o), src, dst, port) for o in offsets_s]


def records(events: list[tuple[int, str, str, int]], rng: random.Random) -> list[Record]:
    return [
        (f"{s}>{d}:{p}/6".encode(), flow_json(t, s, d, p, 700, rng.randint(32768, 60999)))
        for t, s, d, p in sorted(events)
    ]


async def create_compacted_topic(kit: KafkaTestKit, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=kit.broker.bootstrap_servers)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs=COMPACTED)])
    finally:
        await admin.close()


async def test_compaction_keeps_each_pairs_latest_alert(kit: KafkaTestKit) -> None:
    rng = random.Random(3)
    await kit.make_input_topic(1)
    await create_compacted_topic(kit, kit.names.alerts)
    # Phase 1: two pairs beacon every 60 s for 2 h ("new" alerts). Phase 2: both change their
    # sleep to 120 s for 3 h (an "update" each, past the 1 h cooldown). Phase 3: a third pair
    # starts beaconing; its alert lands in a later segment, so phase 2's segment closes.
    phase_1 = [e for p in SLEEP_CHANGES for e in beacon(rng, p, T0_MS, 60, 120)]
    phase_2_start = T0_MS + 120 * 60_000
    phase_2 = [e for p in SLEEP_CHANGES for e in beacon(rng, p, phase_2_start, 120, 90)]
    phase_3_start = phase_2_start + 90 * 120_000
    phase_3 = beacon(rng, LATE_BEACON, phase_3_start, 30, 60)

    async with kit.running(kit.config()) as run:
        for phase, alerts_after in ((phase_1, 2), (phase_2, 4), (phase_3, 5)):
            await kit.produce(kit.names.input, records(phase, rng))
            enough = alerts_after  # awaited within this iteration
            await kit.wait_until(lambda: len(run.alerts) >= enough, what="alerts")  # noqa: B023
            await asyncio.sleep(1.5)  # past segment.ms: the next alert starts a new segment
        sent = list(run.alerts)
    assert [a.lifecycle for a in sent] == ["new", "new", "update", "update", "new"]
    latest = {a.pair_key: a for a in sent}

    # The cleaner runs in the background: wait until each pair has one record left.
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        kept = await kit.read_topic(kit.names.alerts, expected=len(latest))
        if len(kept) == len(latest) or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.5)
    assert sorted(r.key for r in kept) == sorted(latest)
    for record in kept:
        doc = orjson.loads(record.value)
        assert doc["event"]["id"] == latest[record.key].event_id
    late_key = next(a.pair_key for a in sent if a.src_ip == LATE_BEACON[0])
    updated = [orjson.loads(r.value) for r in kept if r.key != late_key]
    assert [d["event"]["action"] for d in updated] == ["beacon-updated"] * 2
    assert all(abs(d["beacon"]["period_s"] - 120) <= 6 for d in updated)
