"""Rejected input records to the dead-letter topic, unchanged, with Kafka-Connect-style headers.

The original key, value and headers are kept so a fixed decoder can replay the topic; the
``__connect.errors.*`` headers follow Kafka Connect's dead-letter convention so existing tooling
can read where a record came from and why it was rejected.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer

# Reported as the "exception class": the decoder does not raise, it returns a Rejection.
REJECTION_CLASS = "beaconwatch.decode.base.Rejection"
_MAX_MESSAGE_CHARS = 1000  # a detail quoting a huge field must not blow up the header


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
