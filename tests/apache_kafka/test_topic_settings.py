"""The topics the service creates get the configured partitions, retention, compaction and
min.insync.replicas, as the broker itself reports them (DescribeTopics, DescribeConfigs)."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from tests.harness.apache_kafka import ApacheKafkaBroker
from tests.integration.conftest import KafkaTestKit

pytestmark = pytest.mark.integration

WATCHED = ("retention.ms", "cleanup.policy", "min.insync.replicas")


async def topic_settings(bootstrap: str, topics: list[str]) -> dict[str, dict[str, str]]:
    """Topic -> partitions and the WATCHED configs, from the broker."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t) for t in topics]
        )
    finally:
        await admin.close()
    settings = {t["topic"]: {"partitions": str(len(t["partitions"]))} for t in described}
    for error_code, _, _, name, entries, *_ in response.resources:
        assert error_code == 0, (name, error_code)
        settings[name].update({e[0]: e[1] for e in entries if e[0] in WATCHED})
    return settings


async def test_created_topics_have_the_configured_settings(
    kit: KafkaTestKit, apache_kafka: ApacheKafkaBroker
) -> None:
    await kit.make_input_topic(1)
    names = kit.names
    config = kit.config(
        state_topic=f"{names.group}.state",
        output_topic_partitions=3,
        internal_topic_partitions=5,
        state_topic_partitions=2,
        alerts_retention_ms=2_592_000_000,
        dead_letter_retention_ms=604_800_000,
        internal_retention_ms=86_400_000,
        topic_min_insync_replicas=1,  # one broker: 2, the production value, cannot be had
    )
    async with kit.running(config):
        pass  # ready: every topic is created
    kafka = config.kafka
    broker_default = str(7 * 24 * 3_600_000)  # log.retention.hours = 168
    assert await topic_settings(
        apache_kafka.bootstrap_servers,
        [kafka.alerts_topic, kafka.dead_letter_topic, kafka.internal_topic, kafka.state_topic],
    ) == {
        kafka.alerts_topic: {
            "partitions": "3",
            "retention.ms": "2592000000",
            "cleanup.policy": "delete",
            "min.insync.replicas": "1",
        },
        kafka.dead_letter_topic: {
            "partitions": "3",
            "retention.ms": "604800000",
            "cleanup.policy": "delete",
            "min.insync.replicas": "1",
        },
        kafka.internal_topic: {
            "partitions": "5",
            "retention.ms": "86400000",
            "cleanup.policy": "delete",
            "min.insync.replicas": "1",
        },
        kafka.state_topic: {
            "partitions": "2",
            "retention.ms": broker_default,
            "cleanup.policy": "compact",
            "min.insync.replicas": "1",
        },
    }
