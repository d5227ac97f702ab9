"""Rejected input records to the dead-letter topic, unchanged, with Kafka-Connect-style headers.

The original key, value and headers are kept so a fixed decoder can replay the topic; the
``__connect.errors.*`` headers follow Kafka Connect's dead-letter convention so existing tooling
can read where a record came from and why it was rejected.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class _Oversized:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


class DeadLetterSink:
    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._partitioner = DefaultPartitioner()  # where `send` would put each record
        self._reasons: dict[str, bytes] = {}  # reason label -> header value, encoded once
        self._handed_over: asyncio.Future[None] | None = None  # last call's batches queued

    async def send_rejections(
        self, msgs: Sequence[ConsumerRecord[bytes, bytes]], rejections: Sequence[Rejection]
    ) -> list[asyncio.Future[Any]]:
        """Queue the dead letters of one partition's batch (``rejections`` index ``msgs``):
        the records `send` would produce, with the same headers, built here into producer
        batches (`create_batch`) instead of one `send` coroutine, future and accumulator call
        each. They are handed to the producer in the background, after those of earlier
        calls: aiokafka holds one batch per partition in flight, and waiting for that here
        would stall the caller a broker round trip per batch. The returned future resolves
        when every dead letter is acknowledged."""
        if not rejections:
            return []
        partitions = sorted(await self._producer.partitions_for(self._topic))
        built = self._build(msgs, rejections, partitions)
        previous, self._handed_over = self._handed_over, asyncio.get_running_loop().create_future()
        return [asyncio.ensure_future(self._submit(built, previous, self._handed_over))]

    def _build(
        self,
        msgs: Sequence[ConsumerRecord[bytes, bytes]],
        rejections: Sequence[Rejection],
        partitions: list[int],
    ) -> list[tuple[int, Any]]:
        """(partition, full batch) in order; a record too big for any batch goes alone as
        (partition, ConsumerRecord-like args) so `send` reports the size error as it would."""
        producer = self._producer
        unkeyed = random.choice(partitions)  # `send` picks one at random per record
        first = msgs[rejections[0].record_index]
        source = (
            ("__connect.errors.topic", first.topic.encode()),
            ("__connect.errors.partition", str(first.partition).encode()),
        )
        reasons = self._reasons
        open_batches: dict[int, Any] = {}
        keyed: dict[bytes, int] = {}
        built: list[tuple[int, Any]] = []
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
            if key is None:
                partition = unkeyed
            else:  # murmur2 is pure Python in aiokafka: ~7 us, and keys repeat (exporters)
                partition = keyed.get(key, -1)
                if partition < 0:
                    partition = keyed[key] = self._partitioner(key, partitions, partitions)
            batch = open_batches.get(partition)
            if batch is None:
                batch = open_batches[partition] = producer.create_batch()
            if batch.append(key=key, value=msg.value, timestamp=None, headers=headers) is None:
                built.append((partition, batch))  # full: this record starts the next one
                batch = open_batches[partition] = producer.create_batch()
                if batch.append(key=key, value=msg.value, timestamp=None, headers=headers) is None:
                    built.append((partition, _Oversized(key, msg.value, headers)))
                    del open_batches[partition]
        built.extend((p, b) for p, b in open_batches.items() if b.record_count())
        return built

    async def _submit(
        self,
        built: list[tuple[int, Any]],
        previous: asyncio.Future[None] | None,
        handed_over: asyncio.Future[None],
    ) -> None:
        producer = self._producer
        acks: list[asyncio.Future[Any]] = []
        try:
            if previous is not None:
                await asyncio.shield(previous)  # dead letters keep the order of their batches
            for partition, batch in built:
                if isinstance(batch, _Oversized):
                    acks.append(await producer.send(
                        self._topic, value=batch.value, key=batch.key, headers=batch.headers,
                        partition=partition,
                    ))  # fmt: skip
                else:
                    acks.append(await producer.send_batch(batch, self._topic, partition=partition))
        finally:
            handed_over.set_result(None)  # the next call goes on even if this one failed
        await asyncio.gather(*acks)

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
