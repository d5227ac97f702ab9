"""Batches awaiting acks: offsets are released in batch order, only once acknowledged."""

from __future__ import annotations

import asyncio
import gc

import pytest
from aiokafka import TopicPartition

from beaconwatch.runtime.in_flight import InFlightBatches

A, B = TopicPartition("flows", 0), TopicPartition("flows", 1)


def pending() -> asyncio.Future[object]:
    return asyncio.get_running_loop().create_future()


async def settle() -> None:
    for _ in range(3):  # let gather's callbacks run
        await asyncio.sleep(0)


async def test_offsets_are_released_in_batch_order_once_acknowledged() -> None:
    in_flight = InFlightBatches()
    first, second = pending(), pending()
    in_flight.add([first], {A: 10}, [])
    in_flight.add([second], {A: 20, B: 5}, [])
    second.set_result(None)  # the later batch is acknowledged first
    await settle()
    assert in_flight.acknowledged().next_offsets == {}  # still behind the first
    assert len(in_flight) == 2
    first.set_result(None)
    await settle()
    done = in_flight.acknowledged()
    assert done.next_offsets == {A: 20, B: 5}  # merged, the later offset wins
    assert len(in_flight) == 0


async def test_a_batch_with_no_outputs_is_released_at_once() -> None:
    in_flight = InFlightBatches()
    in_flight.add([], {A: 7}, [])
    await settle()
    assert in_flight.acknowledged().next_offsets == {A: 7}


async def test_a_failed_send_raises_and_releases_neither_it_nor_later_batches() -> None:
    in_flight = InFlightBatches()
    ok, failed, later = pending(), pending(), pending()
    in_flight.add([ok], {A: 1}, [])
    in_flight.add([failed], {A: 2}, [])
    in_flight.add([later], {A: 3}, [])
    ok.set_result(None)
    later.set_result(None)
    failed.set_exception(RuntimeError("broker said no"))
    await settle()
    with pytest.raises(RuntimeError, match="broker said no"):
        in_flight.acknowledged()
    # The first batch was released before the failure; the failed one is still held.
    assert len(in_flight) == 2
    with pytest.raises(RuntimeError):
        await in_flight.drain()


async def test_drain_waits_for_every_batch() -> None:
    in_flight = InFlightBatches()
    ack = pending()
    in_flight.add([ack], {B: 4}, [])
    asyncio.get_running_loop().call_later(0.01, ack.set_result, None)
    done = await in_flight.drain()
    assert done.next_offsets == {B: 4}
    assert len(in_flight) == 0


async def test_wait_oldest_returns_when_the_oldest_batch_is_acknowledged() -> None:
    in_flight = InFlightBatches()
    oldest, newer = pending(), pending()
    in_flight.add([oldest], {A: 1}, [])
    in_flight.add([newer], {A: 2}, [])
    asyncio.get_running_loop().call_later(0.01, oldest.set_result, None)
    await asyncio.wait_for(in_flight.wait_oldest(), 1.0)
    assert in_flight.acknowledged().next_offsets == {A: 1}
    assert len(in_flight) == 1


async def test_abandoned_failures_are_not_reported_as_unretrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    in_flight = InFlightBatches()
    failed = pending()
    in_flight.add([failed], {A: 1}, [])
    in_flight.abandon()
    assert len(in_flight) == 0
    failed.set_exception(RuntimeError("late failure"))
    await settle()
    gc.collect()  # an unretrieved exception is logged when its future is collected
    await settle()
    assert "exception was never retrieved" not in caplog.text
