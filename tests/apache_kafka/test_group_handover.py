"""Two service instances share one topic in one consumer group on Apache Kafka. An instance
that stops leaves the group (LeaveGroup), so its partitions move to the other at once, not
after a session timeout; the survivor resumes from the committed offsets: every record is
consumed exactly once across the two, and the group ends fully committed."""

from __future__ import annotations

import time

import pytest

from tests.integration.conftest import KafkaTestKit, Running
from tests.integration.test_service import T0_MS, generate_flows

pytestmark = pytest.mark.integration

PARTITIONS = 4
SESSION_TIMEOUT_MS = 30_000  # a hand-over faster than this was a LeaveGroup, not an expiry


def assigned(run: Running) -> float:
    return KafkaTestKit.metric(run.service.registry, "beaconwatch_partitions_assigned")


async def test_stopped_instance_hands_its_partitions_over_at_once(kit: KafkaTestKit) -> None:
    await kit.make_input_topic(PARTITIONS)
    first_half = generate_flows(seed=21, duration_s=1_200)
    second_half = generate_flows(seed=22, start_ms=T0_MS + 1_200_000, duration_s=1_200)
    config = kit.config(session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=1_000)

    async with kit.running(config) as survivor:
        async with kit.running(config) as leaver:
            await kit.wait_until(
                lambda: assigned(survivor) == assigned(leaver) == PARTITIONS // 2,
                timeout_s=40,
                what="two partitions each",
            )
            await kit.produce(kit.names.input, first_half)
            await kit.wait_until(
                lambda: survivor.consumed() + leaver.consumed() == len(first_half),
                what="first half consumed by the two",
            )
            assert survivor.consumed() > 0 and leaver.consumed() > 0
        left_at = time.monotonic()
        leaver_consumed = leaver.consumed()
        await kit.wait_until(
            lambda: assigned(survivor) == PARTITIONS, timeout_s=20, what="all partitions back"
        )
        assert time.monotonic() - left_at < SESSION_TIMEOUT_MS / 1000 / 2

        await kit.produce(kit.names.input, second_half)
        total = len(first_half) + len(second_half)
        await kit.wait_until(
            lambda: survivor.consumed() + leaver_consumed == total, what="second half consumed"
        )
        assert survivor.consumed() + leaver_consumed == total  # nothing read twice
    assert await kit.committed_offsets() == await kit.end_offsets(kit.names.input)
