"""A replication factor the cluster cannot give stops start-up with the broker's reason,
naming the topic (a single-broker Apache Kafka cannot hold two replicas)."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import CollectorRegistry

from beaconwatch.runtime.service import BeaconService
from beaconwatch.runtime.topics import TopicCreationError
from tests.harness.apache_kafka import ApacheKafkaBroker
from tests.integration.conftest import KafkaTestKit

pytestmark = pytest.mark.integration


async def test_an_impossible_replication_factor_stops_start_up_naming_the_topic(
    kit: KafkaTestKit, apache_kafka: ApacheKafkaBroker
) -> None:
    await kit.make_input_topic(1)
    service = BeaconService(kit.config(topic_replication_factor=2), registry=CollectorRegistry())
    with pytest.raises(TopicCreationError, match=kit.names.alerts):
        await asyncio.wait_for(service.run(asyncio.Event()), 60)
