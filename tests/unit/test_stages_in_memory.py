"""The stages' delivery rules without a broker (runtime/testing.py doubles): commit after
acks, checkpoint on revoke, restore and silent replay on assign, a failed send commits
nothing, and the two stages together on unkeyed input. The integration suite runs the same
stages on the embedded broker and Apache Kafka."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from prometheus_client import CollectorRegistry

from beaconwatch.config import Config, load_config, with_overrides
from beaconwatch.runtime.service import BeaconService, Role
from beaconwatch.runtime.testing import MemoryKafka, MemorySource, memory_clients
from tests.integration.test_checkpoints import BEACONS, flows
from tests.integration.test_service import flow_json

INPUT, INTERNAL, ALERTS, DLQ = "flows", "flows.internal", "alerts", "dlq"


def config(**kafka: object) -> Config:
    return with_overrides(
        load_config(env={}),
        kafka={
            "input_topics": [INPUT],
            "internal_topic": INTERNAL,
            "internal_topic_partitions": 4,
            "alerts_topic": ALERTS,
            "dead_letter_topic": DLQ,
            "group_id": "g",
            **kafka,
        },
        metrics={"host": "127.0.0.1", "port": 0},
    )


async def until(cond: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not cond():
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.01)


@asynccontextmanager
async def running(
    kafka: MemoryKafka, cfg: Config, role: Role = "all"
) -> AsyncIterator[BeaconService]:
    service = BeaconService(
        cfg, role=role, registry=CollectorRegistry(), clients=memory_clients(kafka)
    )
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        await until(lambda: service.alive or task.done(), "stages running")
        if task.done():
            task.result()
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


def source_of(kafka: MemoryKafka, group: str) -> MemorySource:
    """The newest member of ``group`` (each run of a stage makes its own)."""
    return [s for s in kafka.sources if s.group == group][-1]


def produce(kafka: MemoryKafka, records: list[tuple[bytes, bytes]], partitions: int) -> None:
    """Keyed input: a pair's records on one partition."""
    for key, value in records:
        kafka.append(INPUT, value, key=key, partition=sum(key) % partitions)


def alerts(kafka: MemoryKafka) -> list[dict[str, object]]:
    return [orjson.loads(v) for v in kafka.values(ALERTS) if v is not None]


def committed_all(kafka: MemoryKafka, group: str, topic: str) -> bool:
    ends = kafka.end_offsets(topic)
    return all(kafka.committed.get((group, tp), 0) == end for tp, end in ends.items())


def restores(service: BeaconService, result: str) -> float:
    value = service.registry.get_sample_value(
        "beaconwatch_checkpoint_restores_total", {"result": result}
    )
    return value or 0.0


@pytest.mark.parametrize("interval_s", [0.0, 3600.0])
async def test_a_revoked_partition_resumes_elsewhere_from_its_checkpoint(
    interval_s: float,
) -> None:
    kafka = MemoryKafka()
    kafka.create(INPUT, 2)
    tps = [TopicPartition(INPUT, p) for p in range(2)]
    cfg = config(input_keyed_by_host=True, checkpoint_interval_s=interval_s)
    produce(kafka, flows(0, 6, 1), 2)  # six check-ins per beacon: too few to alert
    async with running(kafka, cfg, "detect") as first:
        member = source_of(kafka, "g")
        await member.assign(tps)
        await until(lambda: committed_all(kafka, "g", INPUT), "first part committed")
        await member.revoke()  # a rebalance: the partitions go to another instance
        await member.assign([])
        assert first.pipeline.detector.tracked_pairs == 0  # dropped with the partitions
    assert alerts(kafka) == []

    produce(kafka, flows(6, 12, 2), 2)
    async with running(kafka, cfg, "detect") as second:
        await source_of(kafka, "g").assign(tps)
        await until(lambda: committed_all(kafka, "g", INPUT), "second part committed")
    alerted = {(a["source"]["ip"], a["destination"]["ip"]) for a in alerts(kafka)}  # type: ignore[index]
    if interval_s == 0:  # no checkpoints: six more check-ins from empty state alert nothing
        assert alerted == set()
        return
    assert restores(second, "restored") == 2
    assert alerted == {(src, dst) for src, dst, _ in BEACONS}


async def test_after_a_crash_records_between_checkpoint_and_commit_are_replayed_silently() -> None:
    kafka = MemoryKafka()
    kafka.create(INPUT, 1)
    tp = TopicPartition(INPUT, 0)
    cfg = config(input_keyed_by_host=True, checkpoint_interval_s=3600)
    produce(kafka, flows(0, 6, 1), 1)
    async with running(kafka, cfg, "detect"):  # a graceful stop checkpoints at offset C
        await source_of(kafka, "g").assign([tp])
        await until(lambda: committed_all(kafka, "g", INPUT), "first part")
    checkpoint_offset = kafka.checkpoints["g", tp].input_offset

    produce(kafka, flows(6, 12, 2), 1)
    service = BeaconService(cfg, role="detect", registry=CollectorRegistry(),
                            clients=memory_clients(kafka))  # fmt: skip
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await until(lambda: service.alive, "second run")
    await source_of(kafka, "g").assign([tp])
    await until(lambda: committed_all(kafka, "g", INPUT), "second part")
    published = alerts(kafka)
    assert len(published) >= len(BEACONS)
    task.cancel()  # a crash: no shutdown checkpoint, committed offset K > C
    with pytest.raises(asyncio.CancelledError):
        await task
    committed = kafka.committed["g", tp]
    assert kafka.checkpoints["g", tp].input_offset == checkpoint_offset < committed

    async with running(kafka, cfg, "detect") as third:
        await source_of(kafka, "g").assign([tp])
        await until(
            lambda: (
                (third.registry.get_sample_value("beaconwatch_records_replayed_total") or 0)
                == committed - checkpoint_offset
            ),
            "replayed",
        )
    assert alerts(kafka) == published  # nothing published twice


async def test_a_send_that_cannot_succeed_stops_the_stage_and_commits_nothing() -> None:
    kafka = MemoryKafka()
    kafka.create(INPUT, 1)
    kafka.create(DLQ, 1)
    kafka.append(INPUT, b"{not json")
    kafka.fail_sends = TopicAuthorizationFailedError()  # no retry fixes this
    service = BeaconService(
        config(input_keyed_by_host=True, checkpoint_interval_s=0),
        role="detect",
        registry=CollectorRegistry(),
        clients=memory_clients(kafka),
    )
    task = asyncio.create_task(service.run(asyncio.Event()))
    await until(lambda: service.alive, "running")
    await source_of(kafka, "g").assign([TopicPartition(INPUT, 0)])
    with pytest.raises(TopicAuthorizationFailedError):
        await asyncio.wait_for(task, 10)
    assert kafka.committed == {}  # the dead letter was never acknowledged


@pytest.mark.parametrize("role", ["detect", "all"])
async def test_sends_failing_in_an_outage_are_sent_again_and_committed_after_it(
    role: Role,
) -> None:
    """The broker is away (sends fail with a retriable error) for longer than the client
    would retry: the stage keeps running, commits nothing, and when sends succeed again
    the outputs go out and the offsets are committed."""
    kafka = MemoryKafka()
    kafka.create(INPUT, 1)
    kafka.create(DLQ, 1)
    kafka.append(INPUT, b"{not json")
    kafka.fail_sends = KafkaConnectionError("broker gone")
    cfg = config(
        input_keyed_by_host=role == "detect", checkpoint_interval_s=0,
        retry_backoff_ms=10, retry_backoff_max_ms=50,
    )  # fmt: skip
    async with running(kafka, cfg, role) as service:
        await source_of(kafka, "g").assign([TopicPartition(INPUT, 0)])
        if role == "all":
            await source_of(kafka, "g.detect").assign(
                [TopicPartition(INTERNAL, p) for p in range(4)]
            )
        await asyncio.sleep(0.5)  # many resends, each failing
        assert service.alive
        assert kafka.committed == {}
        assert kafka.values(DLQ) == []
        kafka.fail_sends = None
        await until(lambda: kafka.committed.get(("g", TopicPartition(INPUT, 0))) == 1, "commit")
    assert kafka.values(DLQ) == [b"{not json"]


async def test_unkeyed_input_meets_per_host_through_the_repartition_stage() -> None:
    kafka = MemoryKafka()
    kafka.create(INPUT, 4)
    rng = random.Random(3)
    for _, value in flows(0, 20, 5):
        kafka.append(INPUT, value, partition=rng.randrange(4))  # no key, any partition
    async with running(kafka, config(checkpoint_interval_s=0)) as service:
        await source_of(kafka, "g").assign([TopicPartition(INPUT, p) for p in range(4)])
        await source_of(kafka, "g.detect").assign([TopicPartition(INTERNAL, p) for p in range(4)])
        await until(lambda: committed_all(kafka, "g", INPUT), "input committed")
        await until(lambda: committed_all(kafka, "g.detect", INTERNAL), "internal committed")
        split = service.registry.get_sample_value("beaconwatch_hosts_split_total")
    assert split == 0
    new = Counter(
        (a["source"]["ip"], a["destination"]["ip"])  # type: ignore[index]
        for a in alerts(kafka)
        if a["beacon"]["lifecycle"] == "new"  # type: ignore[index]
    )
    assert new == {(src, dst): 1 for src, dst, _ in BEACONS}
    assert kafka.values(DLQ) == []


async def test_another_consumer_group_never_restores_this_groups_checkpoints() -> None:
    kafka = MemoryKafka()
    kafka.create(INPUT, 1)
    tp = TopicPartition(INPUT, 0)
    produce(kafka, flows(0, 6, 1), 1)
    cfg = config(input_keyed_by_host=True, checkpoint_interval_s=3600)
    async with running(kafka, cfg, "detect"):
        await source_of(kafka, "g").assign([tp])
        await until(lambda: committed_all(kafka, "g", INPUT), "first deployment")
    assert ("g", tp) in kafka.checkpoints
    # A second deployment (a test instance, say) on the same cluster and state topic.
    other = config(input_keyed_by_host=True, checkpoint_interval_s=3600, group_id="other")
    async with running(kafka, other, "detect") as service:
        await source_of(kafka, "other").assign([tp])
        await until(lambda: committed_all(kafka, "other", INPUT), "second deployment")
        assert restores(service, "none") == 1 and restores(service, "restored") == 0


async def test_an_exporter_with_a_fast_clock_is_counted_named_and_blinds_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Seen: an exporter 15 min fast on 1 % of the flows made the service reject 71 % of the
    # good traffic as too late and miss every beacon, while health stayed green. Here the
    # last 40 minutes arrive at once (a consumer catching up), stamped by real clocks.
    now_ms = int(time.time() * 1000)
    rng = random.Random(11)
    events = []
    for src, dst, port in BEACONS:
        for minute in range(40, 0, -1):
            t = now_ms - minute * 60_000 + rng.randint(-3000, 3000)
            events.append((t, src, dst, port, 700 + rng.randint(-10, 10), False))
    for i in range(4000):
        t = now_ms - 40 * 60_000 + 25_000 + i * 600  # no fast flow within 25 s of the limit
        fast = i % 100 == 7  # 1 % from the exporter whose clock is 15 min fast
        src, dst = f"10.1.0.{rng.randint(1, 40)}", f"100.64.0.{rng.randint(1, 200)}"
        events.append((t + (15 * 60_000 if fast else 0), src, dst, 443, 900, fast))
    events.sort(key=lambda e: e[0] - (15 * 60_000 if e[5] else 0))  # arrival: true time
    kafka = MemoryKafka()
    kafka.create(INPUT, 1)
    for t, src, dst, port, nbytes, _ in events:
        kafka.append(INPUT, flow_json(t, src, dst, port, nbytes, rng.randint(32768, 60999)))
    cfg = config(input_keyed_by_host=True, checkpoint_interval_s=0)
    with caplog.at_level("WARNING", logger="beaconwatch.runtime.detect_stage"):
        async with running(kafka, cfg, "detect") as service:
            await source_of(kafka, "g").assign([TopicPartition(INPUT, 0)])
            await until(lambda: committed_all(kafka, "g", INPUT), "input committed")
            registry = service.registry
            ahead = registry.get_sample_value("beaconwatch_flows_ahead_total")
            late = registry.get_sample_value(
                "beaconwatch_records_rejected_total", {"reason": "too_late"}
            )
    # The fast flows of the last 14 minutes are ahead of the wall clock (the others were
    # stamped 15 min fast but still before now): counted, not rejected, event time unmoved.
    fast_in_last_14_min = sum(1 for t, *_, fast in events if fast and t > now_ms + 60_000)
    assert ahead == fast_in_last_14_min > 10
    assert not late
    assert kafka.values(DLQ) == []
    assert {(a["source"]["ip"], a["destination"]["ip"]) for a in alerts(kafka)} >= {  # type: ignore[index]
        (src, dst) for src, dst, _ in BEACONS
    }
    (warning,) = [r.getMessage() for r in caplog.records if "clock is fast" in r.getMessage()]
    assert "s ahead" in warning and "10.1.0." in warning
