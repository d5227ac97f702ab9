"""Sends that outlive a broker outage: a producer whose failed sends are sent again.

aiokafka gives up on a batch it could not deliver within ``request_timeout_ms`` (40 s): in a
longer outage every output in flight fails with leader-not-available or not-leader, and the
stage that waits for them used to stop the service. Here a send that fails with a retriable
error (or the client's own timeout) is sent again after a bounded, jittered exponential
backoff, until it is acknowledged; the caller's future resolves then. Nothing is committed
before (the ledger waits for these futures), so delivery stays at-least-once.

A record sent again may land after records sent later; only outputs whose send failed are
affected, and alerts carry their own time and lifecycle. Errors a retry cannot fix (a record
too large, no authorisation) fail the future as before.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.errors import KafkaError, KafkaTimeoutError

from beaconwatch.runtime.backoff import Backoff
from beaconwatch.sinks.base import Producer

log = logging.getLogger(__name__)


def is_transient(exc: BaseException) -> bool:
    """Would sending again help? (The broker or a leader was away, a request timed out.)"""
    return isinstance(exc, KafkaTimeoutError) or (
        isinstance(exc, KafkaError) and bool(exc.retriable)
    )


class ResendingProducer:
    """A `Producer` wrapping another; see the module docstring."""

    def __init__(
        self,
        inner: Producer,
        backoff: Backoff | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._inner = inner
        self._backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._retrying: set[asyncio.Task[None]] = set()
        self._failing = False  # a resend is under way: logged once, on the way in and out
        self.resent_total = 0

    async def send(
        self,
        topic: str,
        value: bytes | None = None,
        key: bytes | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> asyncio.Future[Any]:
        def attempt() -> Awaitable[asyncio.Future[Any]]:
            return self._inner.send(
                topic, value, key=key, partition=partition, timestamp_ms=timestamp_ms,
                headers=headers,
            )  # fmt: skip

        return self._watch(await attempt(), attempt, topic)

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        # aiokafka keeps a built batch's bytes, so the same batch can be handed over again.
        def attempt() -> Awaitable[asyncio.Future[Any]]:
            return self._inner.send_batch(batch, topic, partition=partition)

        return self._watch(await attempt(), attempt, topic)

    def _watch(
        self,
        first: asyncio.Future[Any],
        attempt: Callable[[], Awaitable[asyncio.Future[Any]]],
        topic: str,
    ) -> asyncio.Future[Any]:
        outer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def done(fut: asyncio.Future[Any]) -> None:
            if outer.done():
                return
            if fut.cancelled():
                outer.cancel()
            elif (exc := fut.exception()) is None:
                outer.set_result(fut.result())
            elif is_transient(exc):
                task = asyncio.ensure_future(self._resend(outer, attempt, topic, exc))
                self._retrying.add(task)
                task.add_done_callback(self._retrying.discard)
            else:
                outer.set_exception(exc)

        first.add_done_callback(done)
        return outer

    async def _resend(
        self,
        outer: asyncio.Future[Any],
        attempt: Callable[[], Awaitable[asyncio.Future[Any]]],
        topic: str,
        error: BaseException,
    ) -> None:
        if not self._failing:
            self._failing = True
            log.warning("sends to %s failed (%r): sending again until acknowledged", topic, error)
        n = 0
        try:
            while not outer.done():
                await asyncio.sleep(self._backoff.delay_s(n, self._rng))
                n += 1
                self.resent_total += 1
                try:
                    result = await (await attempt())
                except Exception as exc:  # a transient one is tried again
                    if not is_transient(exc):
                        outer.set_exception(exc)
                    continue
                outer.set_result(result)
        except asyncio.CancelledError:
            if not outer.done():  # stopped first: the caller's input stays uncommitted
                stopped = f"stopped before a send to {topic} was acknowledged"
                outer.set_exception(KafkaError(stopped))
            raise
        if self._failing and len(self._retrying) <= 1:
            self._failing = False
            log.info("sends acknowledged again after %d attempts", n)

    async def partitions_for(self, topic: str) -> set[int]:
        return await self._inner.partitions_for(topic)

    def create_batch(self) -> Any:
        return self._inner.create_batch()

    async def stop(self) -> None:
        """Stop resending (their futures fail: their input stays uncommitted and is read
        again at the next start), then stop the inner producer."""
        for task in list(self._retrying):
            task.cancel()
        await asyncio.gather(*self._retrying, return_exceptions=True)
        await self._inner.stop()
