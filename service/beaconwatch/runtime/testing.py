"""In-memory doubles of Kafka for unit tests of the stages (bytewax's `testing` is the model).

`MemoryKafka` holds topics (partitions of records), committed offsets per group and the
state topic's checkpoints; `memory_clients(kafka)` gives the stages a source, producer,
checkpoint store and admin backed by it. There is no group coordinator: the test assigns and
revokes partitions itself (`MemorySource.assign` / `revoke`), which runs the stage's rebalance
callbacks exactly as aiokafka would. Integration tests run the same stages on real brokers;
these only make the delivery rules (commit after acks, checkpoint on revoke, restore and
replay on assign) testable in milliseconds, including failures a broker will not produce on
demand (`MemoryKafka.fail_sends`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from beaconwatch.config import KafkaConfig
from beaconwatch.runtime.checkpoints import Checkpoint, Missing
from beaconwatch.runtime.clients import CheckpointStore, Clients
from beaconwatch.sinks.base import Producer
from beaconwatch.sources.base import Records, Source

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True, slots=True)
class StoredRecord:
    key: bytes | None
    value: bytes | None
    headers: Headers


@dataclass
class MemoryKafka:
    topics: dict[str, list[list[StoredRecord]]] = field(default_factory=dict)
    committed: dict[tuple[str, TopicPartition], int] = field(default_factory=dict)
    checkpoints: dict[tuple[str, TopicPartition], Checkpoint] = field(default_factory=dict)
    fail_sends: Exception | None = None  # every send fails with this while set
    sources: list[MemorySource] = field(default_factory=list)

    def create(self, topic: str, partitions: int) -> bool:
        if topic in self.topics:
            return False
        self.topics[topic] = [[] for _ in range(partitions)]
        return True

    def append(
        self,
        topic: str,
        value: bytes | None,
        *,
        key: bytes | None = None,
        partition: int = 0,
        headers: Headers | None = None,
    ) -> int:
        log = self.topics[topic][partition]
        log.append(StoredRecord(key, value, list(headers or [])))
        return len(log) - 1

    def values(self, topic: str) -> list[bytes | None]:
        return [r.value for part in self.topics.get(topic, []) for r in part]

    def end_offsets(self, topic: str) -> dict[TopicPartition, int]:
        return {TopicPartition(topic, p): len(log) for p, log in enumerate(self.topics[topic])}


class MemorySource:
    """One group member; the test decides its partitions."""

    def __init__(
        self,
        kafka: MemoryKafka,
        listener: ConsumerRebalanceListener,
        topics: list[str],
        group: str,
        max_records: int,
    ) -> None:
        self._kafka = kafka
        self._listener = listener
        self.topics = topics
        self.group = group
        self._max_records = max_records
        self._positions: dict[TopicPartition, int] = {}
        self.started = False
        kafka.sources.append(self)

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.started = False

    async def assign(self, tps: Collection[TopicPartition]) -> None:
        """Give this member ``tps`` (after an eager rebalance revoked what it had)."""
        for tp in tps:
            self._positions[tp] = self._kafka.committed.get((self.group, tp), 0)
        await self._listener.on_partitions_assigned(set(tps))

    async def revoke(self, tps: Collection[TopicPartition] | None = None) -> None:
        revoked = set(self._positions) if tps is None else set(tps)
        await self._listener.on_partitions_revoked(revoked)
        for tp in revoked:
            self._positions.pop(tp, None)

    async def poll(self) -> Records:
        out: Records = {}
        budget = self._max_records
        for tp, position in list(self._positions.items()):
            log = self._kafka.topics.get(tp.topic, [])[tp.partition]
            taken = log[position : position + budget]
            if taken:
                out[tp] = [_consumer_record(tp, position + i, rec) for i, rec in enumerate(taken)]
                self._positions[tp] = position + len(taken)
                budget -= len(taken)
            if budget <= 0:
                break
        if not out:
            await asyncio.sleep(0.005)  # an idle fetch waits a little, as aiokafka's does
        return out

    async def commit(self, next_offsets: Mapping[TopicPartition, int]) -> None:
        for tp, offset in next_offsets.items():
            self._kafka.committed[self.group, tp] = offset

    async def committed(self, tp: TopicPartition) -> int | None:
        return self._kafka.committed.get((self.group, tp))

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self._positions[tp] = offset

    def assignment(self) -> set[TopicPartition]:
        return set(self._positions)

    async def lag_records(self) -> int:
        return sum(len(self._kafka.topics[tp.topic][tp.partition]) - p
                   for tp, p in self._positions.items())  # fmt: skip

    async def lagging_partitions(self) -> set[TopicPartition]:
        return {
            tp
            for tp, p in self._positions.items()
            if p < len(self._kafka.topics[tp.topic][tp.partition])
        }

    async def probe(self, timeout_s: float = 5.0) -> str | None:
        return None


def _consumer_record(
    tp: TopicPartition, offset: int, rec: StoredRecord
) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord(
        topic=tp.topic, partition=tp.partition, offset=offset, timestamp=0, timestamp_type=0,
        key=rec.key, value=rec.value, checksum=None,
        serialized_key_size=len(rec.key or b""), serialized_value_size=len(rec.value or b""),
        headers=tuple(rec.headers),
    )  # fmt: skip


class _Batch:
    def __init__(self) -> None:
        self.records: list[StoredRecord] = []

    def append(
        self, *, key: bytes | None, value: bytes | None, timestamp: int | None, headers: Headers
    ) -> object:
        self.records.append(StoredRecord(key, value, list(headers)))
        return object()  # aiokafka returns metadata; None would mean "batch full"

    def record_count(self) -> int:
        return len(self.records)


class MemoryProducer:
    def __init__(self, kafka: MemoryKafka) -> None:
        self._kafka = kafka

    def _done(self, result: object) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self._kafka.fail_sends is not None:
            future.set_exception(self._kafka.fail_sends)
        else:
            future.set_result(result)
        return future

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        if self._kafka.fail_sends is not None:
            return self._done(None)
        parts = self._kafka.topics[topic]
        chosen = partition if partition is not None else hash(key) % len(parts) if key else 0
        return self._done(self._kafka.append(topic, value, key=key, partition=chosen,
                                             headers=headers))  # fmt: skip

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(len(self._kafka.topics[topic])))

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        if self._kafka.fail_sends is None:
            for rec in batch.records:
                self._kafka.append(topic, rec.value, key=rec.key, partition=partition,
                                   headers=rec.headers)  # fmt: skip
        return self._done(None)

    async def stop(self) -> None:
        return None


class MemoryCheckpointStore:
    """Checkpoints by (consumer group, partition), as the state topic keys them."""

    def __init__(self, kafka: MemoryKafka, group: str) -> None:
        self._kafka = kafka
        self.group = group
        self.saves = 0

    async def save(self, tp: TopicPartition, data: bytes, input_offset: int) -> int:
        if self._kafka.fail_sends is not None:
            raise self._kafka.fail_sends
        self.saves += 1
        self._kafka.checkpoints[self.group, tp] = Checkpoint(data, input_offset, self.saves)
        return len(data)

    async def load(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, Any]:
        missing = Missing("none", "no checkpoint")
        return {tp: self._kafka.checkpoints.get((self.group, tp), missing) for tp in tps}


def memory_clients(kafka: MemoryKafka) -> Clients:
    def source(
        config: KafkaConfig,
        listener: ConsumerRebalanceListener,
        topics: list[str],
        group: str,
        raw_fetches: bool,  # records always: the stages take both
    ) -> Source:
        return MemorySource(kafka, listener, topics, group, config.max_batch_records)

    async def producer(config: KafkaConfig) -> Producer:
        return MemoryProducer(kafka)

    def store(producer: Producer, config: KafkaConfig) -> CheckpointStore:
        return MemoryCheckpointStore(kafka, config.detect_group)

    async def create_topics(
        config: KafkaConfig,
        partitions: Mapping[str, int],
        configs: Mapping[str, Mapping[str, str]],
    ) -> list[str]:
        return [t for t, n in partitions.items() if kafka.create(t, n)]

    return Clients(
        producer=producer, source=source, checkpoint_store=store, create_topics=create_topics
    )
