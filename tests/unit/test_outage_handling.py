"""What a broker outage meets without a broker: outputs sent again until acknowledged, the
client's per-attempt log lines summarised, one line per connectivity change."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    LeaderNotAvailableError,
    MessageSizeTooLargeError,
)

from beaconwatch.runtime.backoff import Backoff
from beaconwatch.runtime.client_log import ClientLogThrottle
from beaconwatch.runtime.connectivity import Connectivity
from beaconwatch.runtime.resending_producer import ResendingProducer


class FlakyProducer:
    """Fails the first ``failures`` sends (each with the next error of ``errors``)."""

    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.attempts = 0
        self.stopped = False

    async def send(self, topic: str, value: bytes | None = None, **_: Any) -> asyncio.Future[Any]:
        self.attempts += 1
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.errors:
            fut.set_exception(self.errors.pop(0))
        else:
            fut.set_result((topic, value))
        return fut

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        return await self.send(topic, batch)

    async def partitions_for(self, topic: str) -> set[int]:
        return {0}

    def create_batch(self) -> Any:
        return object()

    async def stop(self) -> None:
        self.stopped = True


FAST = Backoff(0.001, 0.005)


@pytest.mark.parametrize(
    "error", [KafkaConnectionError(), LeaderNotAvailableError(), KafkaTimeoutError()]
)
async def test_a_send_failing_transiently_is_sent_again_until_acknowledged(
    error: Exception,
) -> None:
    inner = FlakyProducer([error] * 5)
    producer = ResendingProducer(inner, FAST, rng=random.Random(1))
    result = await asyncio.wait_for(await producer.send("t", b"x"), 5)
    assert result == ("t", b"x") and inner.attempts == 6 and producer.resent_total == 5


async def test_a_batch_is_sent_again_too() -> None:
    inner = FlakyProducer([LeaderNotAvailableError()])
    producer = ResendingProducer(inner, FAST)
    assert await asyncio.wait_for(await producer.send_batch("b", "t", partition=0), 5)
    assert inner.attempts == 2


async def test_an_error_no_retry_fixes_fails_the_send_at_once() -> None:
    inner = FlakyProducer([MessageSizeTooLargeError()])
    producer = ResendingProducer(inner, FAST)
    with pytest.raises(MessageSizeTooLargeError):
        await asyncio.wait_for(await producer.send("t", b"x"), 5)
    assert inner.attempts == 1


async def test_stopping_fails_the_sends_still_being_retried() -> None:
    inner = FlakyProducer([KafkaConnectionError()] * 10_000)
    producer = ResendingProducer(inner, Backoff(0.01, 0.02))
    pending = await producer.send("t", b"x")
    await asyncio.sleep(0.05)
    await asyncio.wait_for(producer.stop(), 5)
    assert inner.stopped
    with pytest.raises(Exception, match="stopped before"):
        await asyncio.wait_for(pending, 1)


def test_backoff_grows_to_its_bound_with_jitter() -> None:
    rng = random.Random(7)
    backoff = Backoff(0.1, 10.0)
    early = [backoff.delay_s(0, rng) for _ in range(200)]
    late = [backoff.delay_s(40, rng) for _ in range(200)]
    assert max(early) <= 0.1 and max(late) <= 10.0
    assert max(late) > 9.0 and len({round(d, 3) for d in late}) > 100  # spread, not fixed


def record(name: str, msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_client_log_repeats_are_held_back_and_counted() -> None:
    now = [0.0]
    throttle = ClientLogThrottle(60.0, clock=lambda: now[0])
    connect = "Unable connect to node with id %s: %s"
    passed = []
    for i in range(1_000):  # ten minutes of an outage, ten failures a second
        now[0] = i * 0.6
        for rec in (
            record("aiokafka", connect, 1, "[Errno 111] refused"),
            record("aiokafka.consumer.fetcher", "Failed fetch messages from 1: NodeNotReady"),
        ):
            if throttle.filter(rec):
                passed.append(rec.getMessage())
    # The first of each kind, then one a minute with the count held back.
    assert 2 <= len(passed) <= 2 * (600 / 60 + 1)
    assert passed[0].startswith("Unable connect to node with id 1")
    assert any("held back" in line for line in passed)
    assert throttle.held_total == 2_000 - len(passed)


def test_client_log_other_kinds_and_our_own_lines_pass() -> None:
    throttle = ClientLogThrottle(60.0, clock=lambda: 0.0)
    assert throttle.filter(record("aiokafka", "a %s", 1))
    assert not throttle.filter(record("aiokafka", "a %s", 2))
    assert throttle.filter(record("aiokafka", "b"))
    assert throttle.filter(record("aiokafka", "a %s", 3, level=logging.INFO))  # below WARNING
    for _ in range(3):
        assert throttle.filter(record("beaconwatch.runtime.service", "a %s", 1))


def test_connectivity_logs_changes_and_a_reminder_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    conn = Connectivity("k:9092", clock=lambda: now[0])
    caplog.set_level(logging.INFO, "beaconwatch.runtime.connectivity")
    for second in range(0, 150, 5):  # probes every 5 s, 150 s of outage
        now[0] = float(second)
        conn.observe("KafkaConnectionError()")
    now[0] = 151.0
    conn.observe(None)
    conn.observe(None)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4, lines  # gone, still gone at 60 s and 120 s, back
    assert "unreachable" in lines[0] and "after 60 s" in lines[1] and "after 120 s" in lines[2]
    assert lines[3] == "Kafka at k:9092 reachable again after 151 s"
    assert conn.reachable and conn.outages == 1
