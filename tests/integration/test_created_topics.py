"""Topics the service creates take their partitions from config, and the internal topic gets
internal_topic_partitions (issue 15: they were created with one partition, fixed)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.integration.conftest import topic_partitions

if TYPE_CHECKING:
    from tests.integration.conftest import KafkaTestKit

pytestmark = pytest.mark.integration


async def test_created_topics_have_the_configured_partitions(kit: KafkaTestKit) -> None:
    await kit.make_input_topic(1)
    config = kit.config(output_topic_partitions=3, internal_topic_partitions=5)
    async with kit.running(config):
        pass
    for topic, partitions in (
        (kit.names.alerts, 3),
        (kit.names.dead_letter, 3),
        (config.kafka.internal_topic, 5),
    ):
        assert len(await topic_partitions(kit.broker, topic)) == partitions, topic
