"""Records too big for any dead letter (issue "Production-hard", step 1): a 1.5 MB and a 5 MB
record among good ones. Forwarding them whole failed (the producer's 1 MiB request limit), the
service exited, and every restart crashed on them again: the partition never moved on."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pytest
from aiokafka import AIOKafkaProducer

from beaconwatch.runtime.topics import create_topics
from beaconwatch.sinks.dead_letter import (
    KEPT_PREFIX_BYTES,
    ORIGINAL_BYTES_HEADER,
    ORIGINAL_SHA256_HEADER,
    TRUNCATED_HEADER,
)
from tests.integration.test_service import flow_json

if TYPE_CHECKING:
    from tests.integration.conftest import KafkaTestKit

pytestmark = pytest.mark.integration

T0_MS = 1_767_225_600_000
BIG = 10 * 1024 * 1024


async def test_oversized_records_are_dead_lettered_bounded_and_the_partition_moves_on(
    kit: KafkaTestKit,
) -> None:
    names = kit.names
    bootstrap = kit.broker.bootstrap_servers
    await create_topics(
        bootstrap, {names.input: 1}, configs={names.input: {"max.message.bytes": str(BIG)}}
    )
    poison = [b'{"x": "' + b"A" * (1_500_000 - 10) + b'"}', b"\x00\x01" * 2_500_000]
    good = [
        flow_json(T0_MS + i * 60_000, "10.0.0.20", "203.0.113.60", 443, 700, 40_000 + i)
        for i in range(12)
    ]
    values = good[:4] + poison[:1] + good[4:8] + poison[1:] + good[8:]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=BIG, acks="all")
    await producer.start()
    try:
        for value in values:
            await (await producer.send(names.input, value, partition=0))
    finally:
        await producer.stop()

    async with kit.running(kit.config()) as run:
        await kit.wait_until(lambda: run.consumed() == len(values), what="all consumed")
        await kit.drained(run)
        assert run.service.alive  # not stopped by the dead letters
        registry = run.service.registry
        assert kit.metric(registry, "beaconwatch_dead_letter_records_total") == 2
        assert kit.metric(registry, "beaconwatch_flows_accepted_total") == len(good)
        assert await kit.committed_offsets() == {0: len(values)}  # the partition moved on
    assert {(a.src_ip, a.dst_ip) for a in run.alerts} == {("10.0.0.20", "203.0.113.60")}

    dead = await kit.read_topic(names.dead_letter, expected=2)
    assert len(dead) == 2
    for rec, original in zip(dead, poison, strict=True):
        headers = dict(rec.headers)
        assert headers[TRUNCATED_HEADER] == b"true"
        assert headers[ORIGINAL_BYTES_HEADER] == b"%d" % len(original)
        assert headers[ORIGINAL_SHA256_HEADER] == hashlib.sha256(original).hexdigest().encode()
        assert rec.value == original[:KEPT_PREFIX_BYTES]
        assert headers["reason"] and headers["__connect.errors.offset"]
