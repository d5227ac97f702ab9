"""Integration fixtures: one real Kafka broker per test session, plus helpers to produce, read
back, and inspect offsets. Every test uses its own topics and group.

The broker is the embedded Tansu by default, Apache Kafka with TEST_BROKER=apache-kafka
(tests/harness/brokers.py); the suite passes on both."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client import CollectorRegistry

from beaconwatch.alerting.alert import Alert
from beaconwatch.config import Config, load_config, with_overrides
from beaconwatch.embedded.tansu import create_topics
from beaconwatch.runtime.service import BeaconService
from tests.harness.brokers import BrokerUnderTest, broker_under_test

# Tansu answers a JoinGroup after half the session timeout, and a member that did not leave
# (aiokafka sends no LeaveGroup at generation 0, Tansu's first) holds the group for a whole
# session timeout: a short one keeps the suite fast. Still long enough for a numba compile.
FAST_GROUP = {"session_timeout_ms": 6000, "heartbeat_interval_ms": 1000}


@pytest.fixture(scope="session")
def broker() -> Iterator[BrokerUnderTest]:
    with broker_under_test() as b:
        yield b


@dataclass(frozen=True)
class Names:
    input: str
    alerts: str
    dead_letter: str
    group: str


@pytest.fixture
def names() -> Names:
    tag = uuid.uuid4().hex[:10]
    return Names(f"flows-{tag}", f"alerts-{tag}", f"dlq-{tag}", f"group-{tag}")


class KafkaTestKit:
    """Helpers bound to the session broker and this test's names (handed out by `kit`)."""

    def __init__(self, broker: BrokerUnderTest, names: Names) -> None:
        self.broker = broker
        self.names = names

    def config(self, **kafka: object) -> Config:
        return make_config(self.broker, self.names, **kafka)

    async def make_input_topic(self, partitions: int) -> None:
        await create_topics(self.broker.bootstrap_servers, {self.names.input: partitions})

    async def produce(
        self, topic: str, records: Sequence[tuple[bytes | None, bytes | None]]
    ) -> None:
        await produce(self.broker, topic, records)

    async def read_topic(self, topic: str, *, expected: int) -> list[ConsumerRecord[bytes, bytes]]:
        return await read_topic(self.broker, topic, expected=expected)

    async def end_offsets(self, topic: str) -> dict[int, int]:
        return await end_offsets(self.broker, topic)

    async def committed_offsets(self) -> dict[int, int]:
        return await committed_offsets(self.broker, self.names.group, self.names.input)

    async def drained(self, run: Running, timeout_s: float = 30.0) -> None:
        await run.drained(self.broker, timeout_s)

    @staticmethod
    def running(config: Config, *, wait_ready: bool = True) -> AbstractAsyncContextManager[Running]:
        return running_service(config, wait_ready=wait_ready)

    @staticmethod
    async def wait_until(cond: Callable[[], bool], timeout_s: float = 20.0, what: str = "") -> None:
        await wait_until(cond, timeout_s, what)

    @staticmethod
    def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
        return metric(registry, name, **labels)


@pytest.fixture
def kit(broker: BrokerUnderTest, names: Names) -> KafkaTestKit:
    return KafkaTestKit(broker, names)


def make_config(broker: BrokerUnderTest, names: Names, **kafka: object) -> Config:
    return with_overrides(
        load_config(env={}),
        kafka={
            "bootstrap_servers": broker.bootstrap_servers,
            "input_topics": [names.input],
            "alerts_topic": names.alerts,
            "dead_letter_topic": names.dead_letter,
            "group_id": names.group,
            "internal_topic": f"{names.group}.internal",  # one per test, like the group
            "internal_topic_partitions": 4,
            "poll_timeout_ms": 100,
            "fetch_max_wait_ms": 100,
            **FAST_GROUP,
            **kafka,
        },
        metrics={"host": "127.0.0.1", "port": 0},
    )


async def produce(
    broker: BrokerUnderTest,
    topic: str,
    records: Sequence[tuple[bytes | None, bytes | None]],
    *,
    partition: int | None = None,
) -> None:
    """Produce (key, value) records and wait for every ack (keys choose the partition, unless
    ``partition`` is given)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap_servers, acks="all", enable_idempotence=False
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value=v, key=k, partition=partition) for k, v in records
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_topic(
    broker: BrokerUnderTest, topic: str, *, expected: int, timeout_s: float = 10.0
) -> list[ConsumerRecord[bytes, bytes]]:
    """All records of ``topic`` once at least ``expected`` are there (no consumer group)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await topic_partitions(broker, topic)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[ConsumerRecord[bytes, bytes]] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(out) < expected and asyncio.get_running_loop().time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for msgs in batch.values():
                out.extend(msgs)
        # a short extra poll so "more than expected" shows up as a failure, not a pass
        for msgs in (await consumer.getmany(timeout_ms=300)).values():
            out.extend(msgs)
        return out
    finally:
        await consumer.stop()


async def topic_partitions(
    broker: BrokerUnderTest, topic: str, *, timeout_s: float = 10.0
) -> list[int]:
    """The topic's partition numbers, from the admin API: a consumer's own metadata only
    covers what it subscribed to (Apache Kafka), and ``consumer.topics()`` does not refresh it."""
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    await admin.start()
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            described = await admin.describe_topics([topic])
            if described and described[0]["error_code"] == 0 and described[0]["partitions"]:
                return sorted(p["partition"] for p in described[0]["partitions"])
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"topic {topic} does not exist")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def end_offsets(broker: BrokerUnderTest, topic: str) -> dict[int, int]:
    """Partition -> offset of the next record to be written (the high watermark).

    Read from fetch responses, not ListOffsets: Tansu 0.6 answers ListOffsets(latest) with the
    last record batch's base offset + 1, not the end of the log.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=broker.bootstrap_servers, enable_auto_commit=False, max_poll_records=1
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in await topic_partitions(broker, topic)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        deadline = asyncio.get_running_loop().time() + 10
        while any(consumer.highwater(tp) is None for tp in tps):
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no high watermark for {topic}")
            await consumer.getmany(timeout_ms=100)
        return {tp.partition: int(consumer.highwater(tp)) for tp in tps}
    finally:
        await consumer.stop()


async def committed_offsets(broker: BrokerUnderTest, group: str, topic: str) -> dict[int, int]:
    # Explicit partitions: Tansu's answer to the "all partitions" form does not decode.
    partitions = [TopicPartition(topic, p) for p in await end_offsets(broker, topic)]
    admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group, partitions=partitions)
        return {tp.partition: om.offset for tp, om in offsets.items() if om.offset >= 0}
    finally:
        await admin.close()


async def wait_until(cond: Callable[[], bool], timeout_s: float = 20.0, what: str = "") -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        await asyncio.sleep(0.05)


def metric(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@dataclass
class Running:
    service: BeaconService
    stop: asyncio.Event
    task: asyncio.Task[None]
    alerts: list[Alert]

    def consumed(self) -> float:
        return metric(self.service.registry, "beaconwatch_flows_consumed_total")

    async def drained(self, broker: BrokerUnderTest, timeout_s: float = 30.0) -> None:
        """Wait until every record of the input topics is committed by the stage reading
        them and, with a repartition stage, every record of the internal topic by the
        detector: every flow produced so far went all the way through."""
        service = self.service
        kafka = service.config.kafka

        def caught_up(ends: dict[TopicPartition, int], offsets: dict[TopicPartition, int]) -> bool:
            return all(offsets.get(tp) == end for tp, end in ends.items() if end > 0)

        inputs = {
            TopicPartition(t, p): end
            for t in kafka.input_topics
            for p, end in (await end_offsets(broker, t)).items()
        }
        await wait_until(
            lambda: caught_up(inputs, service.committed_offsets), timeout_s, "input committed"
        )
        if service.repartition is not None and service.detect is not None:
            internal = {
                TopicPartition(kafka.internal_topic, p): end
                for p, end in (await end_offsets(broker, kafka.internal_topic)).items()
            }
            detect = service.detect
            await wait_until(
                lambda: caught_up(internal, detect.committed_offsets),
                timeout_s,
                "internal topic committed by the detector",
            )


@asynccontextmanager
async def running_service(config: Config, *, wait_ready: bool = True) -> AsyncIterator[Running]:
    """A BeaconService running in a task; stopped (gracefully) and awaited on exit."""
    alerts: list[Alert] = []
    service = BeaconService(
        config,
        registry=CollectorRegistry(),
        alert_listener=alerts.extend,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    running = Running(service, stop, task, alerts)
    try:
        if wait_ready:
            await wait_until(
                lambda: service.ready or task.done(), timeout_s=30, what="service ready"
            )
            if task.done():
                task.result()  # surface the start-up error
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
