"""The lag gauges the alerting rules watch (BeaconwatchConsumerLagGrowing,
BeaconwatchRepartitionLagGrowing): each stage's rises while its input waits and falls back to
zero once read. The repartition stage's was exported but never set (always 0)."""

from __future__ import annotations

from aiokafka import TopicPartition

from beaconwatch.runtime.service import BeaconService
from beaconwatch.runtime.testing import MemoryKafka
from tests.integration.test_checkpoints import flows
from tests.unit.test_stages_in_memory import (
    INPUT,
    INTERNAL,
    committed_all,
    config,
    running,
    source_of,
    until,
)


def gauge(service: BeaconService, name: str) -> float:
    return service.registry.get_sample_value(name) or 0.0


async def test_each_stage_exports_its_lag_while_behind_and_zero_once_caught_up() -> None:
    kafka = MemoryKafka()
    kafka.create(INPUT, 2)
    records = flows(0, 60, 1)
    for i, (_, value) in enumerate(records):
        kafka.append(INPUT, value, partition=i % 2)
    # Small polls: the stages take many batches, and the gauges are read between them.
    cfg = config(checkpoint_interval_s=0, max_batch_records=4)
    async with running(kafka, cfg) as service:
        repartition_seen: list[float] = []
        await source_of(kafka, "g").assign([TopicPartition(INPUT, p) for p in range(2)])

        def repartition_done() -> bool:
            repartition_seen.append(gauge(service, "beaconwatch_repartition_lag_records"))
            return committed_all(kafka, "g", INPUT)

        await until(repartition_done, "input committed")
        await until(
            lambda: gauge(service, "beaconwatch_repartition_lag_records") == 0, "input lag 0"
        )
        assert max(repartition_seen) > len(records) / 2  # most of the input waited at first

        # The detector starts only now, with the whole internal topic waiting for it.
        detect_seen: list[float] = []
        await source_of(kafka, "g.detect").assign([TopicPartition(INTERNAL, p) for p in range(4)])

        def detect_done() -> bool:
            detect_seen.append(gauge(service, "beaconwatch_consumer_lag_records"))
            return committed_all(kafka, "g.detect", INTERNAL)

        await until(detect_done, "internal committed")
        await until(lambda: gauge(service, "beaconwatch_consumer_lag_records") == 0, "lag 0")
        assert max(detect_seen) > 0
