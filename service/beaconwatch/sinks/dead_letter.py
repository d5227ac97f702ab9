"""Rejected input records to the dead-letter topic, unchanged, with Kafka-Connect-style headers.

The original key, value and headers are kept so a fixed decoder can replay the topic; the
``__connect.errors.*`` headers follow Kafka Connect's dead-letter convention so existing tooling
can read where a record came from and why it was rejected.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord
from aiokafka.partitioner import DefaultPartitioner

from beaconwatch.decode.base import Rejection

# Reported as the "exception class": the decoder does not raise, it returns a Rejection.
REJECTION_CLASS = "beaconwatch.decode.base.Rejection"
_MAX_MESSAGE_CHARS = 1000  # a detail quoting a huge field must not blow up the header
_CLASS_HEADER = ("__connect.errors.exception.class.name", REJECTION_CLASS.encode())


def dead_letter_headers(
    *,
    topic: str,
    partition: int,
    offset: int,
    reason: str,
    detail: str,
    original: Sequence[tuple[str, bytes]] = (),
) -> list[tuple[str, bytes]]:
    return [
        *original,
        ("__connect.errors.topic", topic.encode()),
        ("__connect.errors.partition", str(partition).encode()),
        ("__connect.errors.offset", str(offset).encode()),
        ("__connect.errors.exception.class.name", REJECTION_CLASS.encode()),
        ("__connect.errors.exception.message", detail[:_MAX_MESSAGE_CHARS].encode()),
        ("reason", reason.encode()),
    ]


class DeadLetterSink:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._partitioner = DefaultPartitioner()  # where `send` would put each record
        self._reasons: dict[str, bytes] = {}  # reason label -> header value, encoded once

    async def send_rejections(
        self, msgs: Sequence[ConsumerRecord[bytes, bytes]], rejections: Sequence[Rejection]
    ) -> list[asyncio.Future[Any]]:
        """Queue the dead letters of one partition's batch (``rejections`` index ``msgs``):
        the records `send` would produce, with the same headers, built into one producer
        batch per dead-letter partition (`create_batch`/`send_batch`) instead of one `send`
        coroutine, future and accumulator call each. Every returned future resolves when its
        batch is acknowledged; all of them together acknowledge every dead letter."""
        if not rejections:
            return []
        producer = self._producer
        partitions = sorted(await producer.partitions_for(self._topic))
        unkeyed = random.choice(partitions)  # `send` picks one at random per record
        first = msgs[rejections[0].record_index]
        source = (
            ("__connect.errors.topic", first.topic.encode()),
            ("__connect.errors.partition", str(first.partition).encode()),
        )
        reasons = self._reasons
        batches: dict[int, Any] = {}
        futures: list[asyncio.Future[Any]] = []
        for index, reason, detail in rejections:
            msg = msgs[index]
            key = msg.key
            reason_value = reasons.get(reason) or reasons.setdefault(reason, reason.encode())
            headers = [
                *(msg.headers or ()),
                *source,
                ("__connect.errors.offset", b"%d" % msg.offset),
                _CLASS_HEADER,
                ("__connect.errors.exception.message", detail[:_MAX_MESSAGE_CHARS].encode()),
                ("reason", reason_value),
            ]
            partition = unkeyed if key is None else self._partitioner(key, partitions, partitions)
            batch = batches.get(partition)
            if batch is None:
                batch = batches[partition] = producer.create_batch()
            if batch.append(key=key, value=msg.value, timestamp=None, headers=headers) is None:
                # Full: ship it and start the next one with this record.
                futures.append(await producer.send_batch(batch, self._topic, partition=partition))
                batch = batches[partition] = producer.create_batch()
                if batch.append(key=key, value=msg.value, timestamp=None, headers=headers) is None:
                    # Too big for any batch: `send` reports the size error, as it would.
                    futures.append(
                        await producer.send(
                            self._topic, value=msg.value, key=key, headers=headers,
                            partition=partition,
                        )
                    )  # fmt: skip
        for partition, batch in batches.items():
            if batch.record_count():
                futures.append(await producer.send_batch(batch, self._topic, partition=partition))
        return futures

    async def send(
        self,
        *,
        source_topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]],
        reason: str,
        detail: str,
    ) -> asyncio.Future[Any]:
        """Queue one rejected record; the future resolves on broker ack."""
        fut: asyncio.Future[Any] = await self._producer.send(
            self._topic,
            value=value,
            key=key,
            headers=dead_letter_headers(
                topic=source_topic,
                partition=partition,
                offset=offset,
                reason=reason,
                detail=detail,
                original=headers,
            ),
        )
        return fut
