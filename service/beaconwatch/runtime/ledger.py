"""The offset ledger of one consuming stage: what was read, sent, acknowledged and committed.

Delivery is at-least-once: a batch's input offsets are committed only after every output
record produced from it, and from every earlier batch, is acknowledged (`InFlightBatches`).
Offsets of partitions revoked meanwhile are the new owner's business and never committed here.
The ledger does no I/O but through the `Committer` it is given, so its rules are unit-tested
without a broker.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Protocol

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError

from beaconwatch.alerting.alert import Alert
from beaconwatch.runtime.backoff import Backoff
from beaconwatch.runtime.in_flight import InFlightBatches

log = logging.getLogger(__name__)


class Committer(Protocol):
    async def commit(self, next_offsets: Mapping[TopicPartition, int]) -> None: ...


class OffsetLedger:
    def __init__(
        self,
        committer: Committer,
        *,
        alert_listener: Callable[[Sequence[Alert]], None] | None = None,
        retry_backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._committer = committer
        self._retry_backoff = retry_backoff or Backoff()
        self._clock = clock
        self._rng = random.Random()
        self._commit_failures = 0  # in a row
        self._retry_commit_at_s = 0.0
        self._alert_listener = alert_listener
        self.assigned: set[TopicPartition] = set()
        # Next offset per partition whose batch is fully processed and acknowledged.
        self.processed: dict[TopicPartition, int] = {}
        self.committed: dict[TopicPartition, int] = {}
        # Offsets whose commit failed on a transient error (broker or coordinator away):
        # committed with the next commit.
        self._uncommitted: dict[TopicPartition, int] = {}
        self.in_flight = InFlightBatches()

    @property
    def idle_work(self) -> bool:
        """Outputs in flight, or a failed commit due for another try: work for an idle
        poll."""
        return bool(self.in_flight) or (
            bool(self._uncommitted) and self._clock() >= self._retry_commit_at_s
        )

    def sent(
        self,
        deliveries: Sequence[asyncio.Future[object]],
        next_offsets: dict[TopicPartition, int],
        alerts: list[Alert] | None = None,
    ) -> None:
        """A batch's outputs were handed to the producer; commit ``next_offsets`` once they
        and those of every earlier batch are acknowledged."""
        self.in_flight.add(deliveries, next_offsets, alerts or [])

    async def commit_acknowledged(self, *, wait: bool = False, max_in_flight: int = 0) -> None:
        """Commit the offsets of the batches whose outputs are acknowledged: all of them with
        ``wait``; else wait for the oldest while more than ``max_in_flight`` are pending. A
        failed send raises here, with that batch and every later one uncommitted."""
        if wait:
            done = await self.in_flight.drain()
        else:
            if max_in_flight and len(self.in_flight) > max_in_flight:
                await self.in_flight.wait_oldest()
            done = self.in_flight.acknowledged()
        next_offsets = {tp: off for tp, off in done.next_offsets.items() if tp in self.assigned}
        self.processed.update(next_offsets)
        if self._alert_listener is not None and done.alerts:
            self._alert_listener(done.alerts)
        await self._commit(next_offsets)

    async def _commit(self, next_offsets: dict[TopicPartition, int]) -> None:
        if self._uncommitted:
            next_offsets = {
                **{tp: o for tp, o in self._uncommitted.items() if tp in self.assigned},
                **next_offsets,
            }
            self._uncommitted = {}
        if not next_offsets:
            return
        try:
            await self._committer.commit(next_offsets)
        except CommitFailedError as exc:
            # The group rebalanced under us: the new owner re-reads from the last commit
            # (duplicates, never loss). Not fatal.
            log.warning("commit failed after a rebalance, records may be re-read: %s", exc)
            return
        except KafkaError as exc:
            if not (exc.retriable or isinstance(exc, RebalanceInProgressError)):
                raise
            # The coordinator moved or the broker is away: try again with the next commit,
            # or after a backoff when idle.
            if not self._commit_failures:
                log.warning("commit failed (%r): trying again until it succeeds", exc)
            self._commit_failures += 1
            delay_s = self._retry_backoff.delay_s(self._commit_failures, self._rng)
            self._retry_commit_at_s = self._clock() + delay_s
            self._uncommitted = next_offsets
            return
        if self._commit_failures:
            log.info("commit succeeded again after %d failures", self._commit_failures)
            self._commit_failures = 0
        self.committed.update(next_offsets)

    async def commit_revoked(self, revoked: Collection[TopicPartition]) -> None:
        """Before ``revoked`` is handed over: wait for every output in flight, commit what was
        processed of them. A failed commit is logged (their next owner re-reads)."""
        done = await self.in_flight.drain()
        self.processed.update(
            {tp: off for tp, off in done.next_offsets.items() if tp in self.assigned}
        )
        if self._alert_listener is not None and done.alerts:
            self._alert_listener(done.alerts)
        pending = {
            tp: off
            for tp, off in self.processed.items()
            if tp in revoked and self.committed.get(tp) != off
        }
        try:
            await self._committer.commit(pending)
            self.committed.update(pending)
        except KafkaError as exc:
            log.warning("commit on revoke failed, records may be re-read: %s", exc)

    def forget(self, lost: Collection[TopicPartition]) -> None:
        """Partitions that went to another member: their offsets are not ours any more."""
        for tp in lost:
            self._uncommitted.pop(tp, None)
            self.processed.pop(tp, None)
            self.committed.pop(tp, None)

    def abandon(self) -> None:
        """Shutting down after an error: outputs still in flight are left uncommitted."""
        self.in_flight.abandon()
