"""What the stages talk to Kafka through: a source, a producer, a checkpoint store, an admin.

The stages hold the delivery rules (commit after acks, checkpoint after commit, restore on
assign); these contracts hold the I/O. Production uses the aiokafka implementations
(`kafka_clients`); `runtime/testing.py` has in-memory ones, so the rules are unit-tested
without a broker (bytewax's `testing` module is the model), while the integration suite runs
the same stages on real brokers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from beaconwatch.config import KafkaConfig
from beaconwatch.sinks.base import Producer
from beaconwatch.sources.base import Source


class CheckpointStore(Protocol):
    """Where partition snapshots go (`runtime/checkpoints.py`)."""

    async def save(self, tp: TopicPartition, data: bytes, input_offset: int) -> int: ...
    async def load(self, tps: Collection[TopicPartition]) -> dict[TopicPartition, Any]: ...


@dataclass(frozen=True, slots=True)
class Clients:
    producer: Callable[[KafkaConfig], Awaitable[Producer]]
    # (kafka config, rebalance listener, topics, group id, raw fetches) -> a source not yet
    # started; raw fetches: polls may give `RawFetch`es (sources/raw_fetch.py) for records
    source: Callable[[KafkaConfig, ConsumerRebalanceListener, list[str], str, bool], Source]
    checkpoint_store: Callable[[Producer, KafkaConfig], CheckpointStore]
    # (kafka config, topic -> partitions, topic -> configs) -> the topics created
    create_topics: Callable[
        [KafkaConfig, Mapping[str, int], Mapping[str, Mapping[str, str]]], Awaitable[list[str]]
    ]


def kafka_clients() -> Clients:
    """The real thing: aiokafka against `kafka.bootstrap_servers`."""
    from beaconwatch.runtime.checkpoints import KafkaCheckpointStore
    from beaconwatch.runtime.kafka_options import client_options
    from beaconwatch.runtime.producer import start_producer
    from beaconwatch.runtime.topics import create_topics
    from beaconwatch.sources.kafka import KafkaFlowSource

    def source(
        kafka: KafkaConfig,
        listener: ConsumerRebalanceListener,
        topics: list[str],
        group: str,
        raw_fetches: bool,
    ) -> Source:
        return KafkaFlowSource(
            kafka,
            listener,
            topics=topics,
            group_id=group,
            raw_fetches=raw_fetches,
            connection=client_options(kafka),
        )

    async def producer(kafka: KafkaConfig) -> Producer:
        started: Producer = await start_producer(kafka)
        return started

    def store(producer: Producer, kafka: KafkaConfig) -> CheckpointStore:
        return KafkaCheckpointStore(
            producer,
            kafka.state_topic,
            kafka.state_topic_partitions,
            client_options(kafka),
            group=kafka.detect_group,
        )

    async def topics(
        kafka: KafkaConfig,
        partitions: Mapping[str, int],
        configs: Mapping[str, Mapping[str, str]],
    ) -> list[str]:
        return await create_topics(
            topics=partitions,
            configs=configs,
            replication_factor=kafka.topic_replication_factor,
            **client_options(kafka),
        )

    return Clients(producer=producer, source=source, checkpoint_store=store, create_topics=topics)
