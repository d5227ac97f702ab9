"""The producer contract the sinks write through: the subset of `AIOKafkaProducer` they use.

`runtime/testing.py` has an in-memory implementation for unit tests.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol


class Producer(Protocol):
    """The subset of `AIOKafkaProducer` the sinks use."""

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]: ...
    async def partitions_for(self, topic: str) -> set[int]: ...
    def create_batch(self) -> Any: ...
    async def send_batch(
        self, batch: Any, topic: str, *, partition: int
    ) -> asyncio.Future[Any]: ...
    async def stop(self) -> None: ...
