"""Poll the next batch while this one is processed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiokafka.errors import KafkaError

from beaconwatch.sources.base import Records, Source


class ReadAhead:
    """Polls the next batch while the caller processes the one it got.

    aiokafka turns fetched bytes into records inside `getmany`, on the event loop: polled
    only after a batch is processed, that parsing waits for the processing and the other way
    round. With the next poll already running, the parsing (Python, on the loop) overlaps
    the processing (numba kernels in a worker thread, which release the GIL).
    """

    def __init__(self, source: Source) -> None:
        self._source = source
        self._next: asyncio.Task[Records] | None = None

    async def poll(self, before_next: Callable[[], Awaitable[object]] | None = None) -> Records:
        """The next batch; ``before_next`` runs after it arrived and before the following
        poll starts (e.g. to read the consumer positions that match this batch)."""
        if self._next is None:
            self._next = asyncio.create_task(self._source.poll())
        try:
            records = await self._next
        finally:
            self._next = None
        if before_next is not None:
            await before_next()
        self._next = asyncio.create_task(self._source.poll())
        return records

    async def close(self) -> None:
        """Drop the poll in flight (its records are not processed, so not committed)."""
        if self._next is not None:
            self._next.cancel()
            with contextlib.suppress(asyncio.CancelledError, KafkaError):
                await self._next
            self._next = None
