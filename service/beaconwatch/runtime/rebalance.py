"""Forwards aiokafka's rebalance callbacks to the service's coroutines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from aiokafka import TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

PartitionsCallback = Callable[[Collection[TopicPartition]], Awaitable[None]]


class RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]  # untyped base
    """aiokafka awaits these before it re-joins (revoked) and before it fetches (assigned)."""

    def __init__(self, on_revoked: PartitionsCallback, on_assigned: PartitionsCallback) -> None:
        self._on_revoked = on_revoked
        self._on_assigned = on_assigned

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        await self._on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        await self._on_assigned(assigned)
