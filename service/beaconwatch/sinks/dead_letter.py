"""Rejected input records to the dead-letter topic, unchanged, with Kafka-Connect-style headers.

The original key, value and headers are kept so a fixed decoder can replay the topic (but for
records over 256 KiB: their first 16 KiB, size and SHA-256, `bounded`); the
``__connect.errors.*`` headers follow Kafka Connect's dead-letter convention so existing tooling
can read where a record came from and why it was rejected.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import ConsumerRecord
from aiokafka.partitioner import DefaultPartitioner

from beaconwatch.domain.rejections import Rejection
from beaconwatch.sinks.base import Producer

# Reported as the "exception class": the decoder does not raise, it returns a Rejection.
REJECTION_CLASS = "beaconwatch.decode.base.Rejection"
# A dead letter keeps its record whole up to this (key + value); a bigger one (a 5 MB record
# is a poison pill: the producer's request limit is 1 MiB, and every restart would fail on it
# again) keeps the first KEPT_PREFIX_BYTES of its value and key, with its size and SHA-256.
MAX_WHOLE_BYTES = 256 * 1024
KEPT_PREFIX_BYTES = 16 * 1024
TRUNCATED_HEADER = "beaconwatch.truncated"
ORIGINAL_BYTES_HEADER = "beaconwatch.original_bytes"
ORIGINAL_SHA256_HEADER = "beaconwatch.original_sha256"
_MAX_MESSAGE_CHARS = 1000  # a detail quoting a huge field must not blow up the header
_CLASS_HEADER = ("__connect.errors.exception.class.name", REJECTION_CLASS.encode())


Headers = list[tuple[str, bytes]]


def source_headers(msg: ConsumerRecord[bytes, bytes]) -> tuple[tuple[str, bytes], ...]:
    """Where a consumed record came from; the same for every record of one partition's batch."""
    return (
        ("__connect.errors.topic", msg.topic.encode()),
        ("__connect.errors.partition", b"%d" % msg.partition),
    )


def dead_letter_headers(
    msg: ConsumerRecord[bytes, bytes],
    source: tuple[tuple[str, bytes], ...],
    reason: bytes,
    detail: str,
) -> Headers:
    """The record's own headers, then Kafka Connect's: source (`source_headers`), offset,
    exception class and message, and our ``reason`` label."""
    return [
        *(msg.headers or ()),
        *source,
        ("__connect.errors.offset", b"%d" % msg.offset),
        _CLASS_HEADER,
        ("__connect.errors.exception.message", detail[:_MAX_MESSAGE_CHARS].encode()),
        ("reason", reason),
    ]


def bounded(
    key: bytes | None, value: bytes | None, headers: Headers
) -> tuple[bytes | None, bytes | None, Headers]:
    """(key, value, headers) of a dead letter that any producer accepts: the record whole, or
    its first bytes with the original size and digest (of the value) in headers."""
    size = len(key or b"") + len(value or b"")
    if size <= MAX_WHOLE_BYTES:
        return key, value, headers
    value = value or b""
    headers = [
        *headers,
        (TRUNCATED_HEADER, b"true"),
        (ORIGINAL_BYTES_HEADER, b"%d" % len(value)),
        (ORIGINAL_SHA256_HEADER, hashlib.sha256(value).hexdigest().encode()),
    ]
    return (key[:KEPT_PREFIX_BYTES] if key else key), value[:KEPT_PREFIX_BYTES], headers


@dataclass(frozen=True, slots=True)
class _Oversized:
    key: bytes | None
    value: bytes | None
    headers: Headers


class DeadLetterSink:
    def __init__(self, producer: Producer, topic: str) -> None:
        self._producer = producer
        self._topic = topic
        self._partitioner = DefaultPartitioner()  # where `producer.send` would put a record
        self._reasons: dict[str, bytes] = {}  # reason label -> header value, encoded once
        self._handed_over: asyncio.Future[None] | None = None  # last call's batches queued

    async def send_rejections(
        self, msgs: Sequence[ConsumerRecord[bytes, bytes]], rejections: Sequence[Rejection]
    ) -> list[asyncio.Future[Any]]:
        """Queue the dead letters of one partition's batch (``rejections`` index ``msgs``):
        the records `producer.send` would produce, built here into producer batches
        (`create_batch`) instead of one `producer.send` coroutine, future and accumulator call
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
        (partition, `_Oversized`) so `producer.send` reports the size error as it would."""
        producer = self._producer
        unkeyed = random.choice(partitions)  # `producer.send` picks one at random per record
        source = source_headers(msgs[rejections[0].record_index])
        reasons = self._reasons
        open_batches: dict[int, Any] = {}
        keyed: dict[bytes, int] = {}
        built: list[tuple[int, Any]] = []
        for index, reason, detail, replaced in rejections:
            msg = msgs[index]
            key = msg.key
            value = msg.value if replaced is None else replaced
            reason_value = reasons.get(reason) or reasons.setdefault(reason, reason.encode())
            headers = dead_letter_headers(msg, source, reason_value, detail)
            key, value, headers = bounded(key, value, headers)
            if key is None:
                partition = unkeyed
            else:  # murmur2 is pure Python in aiokafka: ~7 us, and keys repeat (exporters)
                partition = keyed.get(key, -1)
                if partition < 0:
                    partition = keyed[key] = self._partitioner(key, partitions, partitions)
            batch = open_batches.get(partition)
            if batch is None:
                batch = open_batches[partition] = producer.create_batch()
            if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                built.append((partition, batch))  # full: this record starts the next one
                batch = open_batches[partition] = producer.create_batch()
                if batch.append(key=key, value=value, timestamp=None, headers=headers) is None:
                    built.append((partition, _Oversized(key, value, headers)))
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
