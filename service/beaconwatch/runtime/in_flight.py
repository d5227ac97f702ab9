"""Batches whose outputs (alerts, dead letters) are sent but not yet acknowledged.

The service hands a batch's outputs to the producer and goes on with the next batch while the
broker acknowledges them; waiting for every ack before reading on made a storm of dead letters
cost a broker round trip per batch on top of its CPU. Offsets still follow at-least-once: a
batch's input offsets are released for commit only once its own outputs and those of every
earlier batch are acknowledged, in order.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from aiokafka import TopicPartition

from beaconwatch.alerting.alert import Alert


@dataclass(frozen=True, slots=True)
class SentBatch:
    acks: asyncio.Future[list[object]]  # all of the batch's deliveries, together
    next_offsets: dict[TopicPartition, int]
    alerts: list[Alert]


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """What became safe to commit: offsets merged in order, and the alerts those batches sent."""

    next_offsets: dict[TopicPartition, int]
    alerts: list[Alert]


class InFlightBatches:
    def __init__(self) -> None:
        self._batches: deque[SentBatch] = deque()

    def __len__(self) -> int:
        return len(self._batches)

    def add(
        self,
        deliveries: Sequence[asyncio.Future[object]],
        next_offsets: dict[TopicPartition, int],
        alerts: list[Alert],
    ) -> None:
        acks: asyncio.Future[list[object]] = asyncio.gather(*deliveries)
        self._batches.append(SentBatch(acks, next_offsets, alerts))

    def acknowledged(self) -> Acknowledged:
        """Pop the leading batches whose outputs are all acknowledged. A failed delivery
        raises here, and neither that batch nor any later one is released."""
        done: list[SentBatch] = []
        batches = self._batches
        while batches and batches[0].acks.done():
            batches[0].acks.result()  # raises the send's error
            done.append(batches.popleft())
        return _merged(done)

    async def wait_oldest(self) -> None:
        """Wait until the oldest batch is acknowledged (or failed)."""
        if self._batches:
            await asyncio.wait([self._batches[0].acks])

    async def drain(self) -> Acknowledged:
        """Wait for every batch; raise the first failure in batch order."""
        if self._batches:
            await asyncio.wait([b.acks for b in self._batches])
        return self.acknowledged()

    def abandon(self) -> None:
        """Forget the batches (shutting down after an error): their offsets stay uncommitted,
        so a restart reads them again."""
        for batch in self._batches:
            batch.acks.add_done_callback(_retrieve)  # their errors were not ours to report
        self._batches.clear()


def _retrieve(acks: asyncio.Future[list[object]]) -> None:
    if not acks.cancelled():
        acks.exception()


def _merged(done: Sequence[SentBatch]) -> Acknowledged:
    offsets: dict[TopicPartition, int] = {}
    alerts: list[Alert] = []
    for batch in done:
        offsets.update(batch.next_offsets)
        alerts.extend(batch.alerts)
    return Acknowledged(offsets, alerts)
