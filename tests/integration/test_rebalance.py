"""Two service instances in one consumer group on the real broker: partitions move between
them, and an instance forgets the state of the partitions it lost. Both stages run in each
instance (the default): the collectors' topic (2 partitions) is shared by the repartition
stages, the internal topic (4) by the detector stages."""

from __future__ import annotations

import pytest

from tests.integration.conftest import KafkaTestKit, Running
from tests.integration.test_service import generate_flows

pytestmark = pytest.mark.integration


def assigned(run: Running) -> float:
    return KafkaTestKit.metric(run.service.registry, "beaconwatch_partitions_assigned")


async def test_second_instance_takes_partitions_and_first_drops_their_state(
    kit: KafkaTestKit,
) -> None:
    await kit.make_input_topic(2)
    records = generate_flows(seed=5)
    await kit.produce(kit.names.input, records)
    config = kit.config()

    async with kit.running(config) as first:
        await kit.wait_until(lambda: first.consumed() >= len(records), what="first consumed all")
        await kit.drained(first)
        assert assigned(first) == 4
        stats = first.service.pipeline.stats
        pairs_before = stats.tracked_pairs
        assert pairs_before > 0

        async with kit.running(config) as second:
            await kit.wait_until(
                lambda: assigned(first) == 2 and assigned(second) == 2,
                timeout_s=40,
                what="one partition each",
            )
            # The first instance dropped exactly the pairs of the partition it handed over.
            dropped = stats.evicted_revoked_total
            assert 0 < dropped < pairs_before
            assert stats.tracked_pairs == pairs_before - dropped
            revoked = KafkaTestKit.metric(
                first.service.registry, "beaconwatch_pairs_evicted_total", cause="revoked"
            )
            assert revoked == dropped
            # Nothing new to read: the second instance starts from the committed offsets.
            assert second.consumed() == 0

        # The second instance left: the first gets its partition back.
        await kit.wait_until(lambda: assigned(first) == 4, timeout_s=40, what="all back")
    committed = await kit.committed_offsets()
    assert committed == await kit.end_offsets(kit.names.input)
