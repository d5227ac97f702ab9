"""The Kafka input: an AIOKafkaConsumer in a consumer group, with manual commits.

Offsets are committed only by the service, after the alerts and dead-letter records produced
from a batch are acknowledged (at-least-once). This module only wraps the consumer; what to do
on a rebalance is the service's business (see `runtime/rebalance.py`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import IllegalStateError, KafkaError
from aiokafka.structs import OffsetAndMetadata

from beaconwatch.config import KafkaConfig
from beaconwatch.sources.base import Records
from beaconwatch.sources.raw_fetch import install as install_raw_fetches
from beaconwatch.sources.raw_fetch import raw_values

log = logging.getLogger(__name__)


class KafkaFlowSource:
    def __init__(
        self,
        kafka: KafkaConfig,
        listener: ConsumerRebalanceListener,
        *,
        connection: Mapping[str, Any],
        topics: list[str] | None = None,
        group_id: str | None = None,
        raw_fetches: bool = False,
    ) -> None:
        """Read ``topics`` (default: kafka.input_topics) in consumer group ``group_id``
        (default: kafka.group_id). ``connection``: aiokafka's connection and security keyword
        arguments, built by the caller (`runtime/kafka_options.py`) so every client of the
        service shares them. ``raw_fetches``: polls give each partition's fetched bytes
        as a `RawFetch` where aiokafka can be spared making a record object each."""
        if raw_fetches:
            install_raw_fetches()
        self._kafka = kafka
        self._listener = listener
        self._topics = topics if topics is not None else kafka.input_topics
        self._consumer = AIOKafkaConsumer(
            group_id=group_id if group_id is not None else kafka.group_id,
            fetch_max_wait_ms=kafka.fetch_max_wait_ms,
            enable_auto_commit=False,
            auto_offset_reset=kafka.auto_offset_reset,
            max_partition_fetch_bytes=kafka.max_partition_fetch_bytes,
            session_timeout_ms=kafka.session_timeout_ms,
            heartbeat_interval_ms=kafka.heartbeat_interval_ms,
            value_deserializer=raw_values if raw_fetches else None,
            **connection,
        )

    async def start(self) -> None:
        await self._consumer.start()
        self._consumer.subscribe(self._topics, listener=self._listener)

    async def stop(self) -> None:
        """Leave the group. Nothing is committed here: the service commits after each batch."""
        await self._consumer.stop()

    async def poll(self) -> Records:
        result: Records = await self._consumer.getmany(
            timeout_ms=self._kafka.poll_timeout_ms, max_records=self._kafka.max_batch_records
        )
        return result

    async def commit(self, next_offsets: Mapping[TopicPartition, int]) -> None:
        """Commit, for each partition, the offset of the next record to read."""
        if next_offsets:
            await self._consumer.commit(
                {tp: OffsetAndMetadata(offset, "") for tp, offset in next_offsets.items()}
            )

    async def committed(self, tp: TopicPartition) -> int | None:
        """The group's committed next offset of ``tp`` (None if it never committed)."""
        offset = await self._consumer.committed(tp)
        return None if offset is None else int(offset)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        """Read ``tp`` from ``offset`` on (an assigned partition restored from a checkpoint)."""
        self._consumer.seek(tp, offset)

    def assignment(self) -> set[TopicPartition]:
        return set(self._consumer.assignment())

    async def lag_records(self) -> int:
        """Sum over assigned partitions of highwater - position (partitions not fetched yet
        have no known highwater and count as 0)."""
        total = 0
        for tp in self.assignment():
            try:
                highwater = self._consumer.highwater(tp)
                if highwater is None:
                    continue
                # A known highwater means the partition was fetched, so the position is valid
                # and this does not wait; the timeout only guards a rebalance racing with us.
                position = await asyncio.wait_for(self._consumer.position(tp), 1.0)
            except (IllegalStateError, AssertionError, TimeoutError):
                continue  # revoked meanwhile
            total += max(0, int(highwater) - int(position))
        return total

    async def lagging_partitions(self) -> set[TopicPartition]:
        """Assigned partitions with records not read yet, or not fetched yet (unknown)."""
        lagging = set()
        for tp in self.assignment():
            try:
                highwater = self._consumer.highwater(tp)
                if highwater is None:
                    lagging.add(tp)
                    continue
                position = await asyncio.wait_for(self._consumer.position(tp), 1.0)
            except (IllegalStateError, AssertionError, TimeoutError):
                continue  # revoked meanwhile
            if int(position) < int(highwater):
                lagging.add(tp)
        return lagging

    async def probe(self, timeout_s: float = 5.0) -> str | None:
        """One metadata round trip to the cluster: None if it answered, else why not."""
        try:
            await asyncio.wait_for(self._consumer.topics(), timeout_s)
        except TimeoutError:
            return f"no metadata answer within {timeout_s:.0f} s"
        except (KafkaError, OSError) as exc:
            return repr(exc)
        return None
