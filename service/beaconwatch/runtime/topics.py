"""Topic creation through the Kafka admin API (service start-up, embedded broker, tests)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from beaconwatch.config import KafkaConfig

_TOPIC_ALREADY_EXISTS = 36


class TopicCreationError(RuntimeError):
    pass


def service_topic_configs(kafka: KafkaConfig) -> dict[str, dict[str, str]]:
    """Topic configs of each topic the service creates, from ``[kafka]``: retention of the
    alerts, dead-letter and internal topics, compaction of the state topic (only each
    partition's latest checkpoint matters), min.insync.replicas of all; unset keys are left
    to the broker's defaults."""
    retention = {
        kafka.alerts_topic: kafka.alerts_retention_ms,
        kafka.dead_letter_topic: kafka.dead_letter_retention_ms,
        kafka.internal_topic: kafka.internal_retention_ms,
    }
    configs: dict[str, dict[str, str]] = {
        topic: {} if ms is None else {"retention.ms": str(ms)} for topic, ms in retention.items()
    }
    configs[kafka.state_topic] = {"cleanup.policy": "compact"}
    if kafka.topic_min_insync_replicas is not None:
        for topic_configs in configs.values():
            topic_configs["min.insync.replicas"] = str(kafka.topic_min_insync_replicas)
    return configs


async def create_topics(
    bootstrap_servers: str,
    topics: Mapping[str, int],
    *,
    replication_factor: int = 1,
    configs: Mapping[str, Mapping[str, str]] | None = None,
    timeout_s: float = 10.0,
    **client_options: Any,
) -> list[str]:
    """Create the missing ones of ``topics`` (name -> partitions), with ``configs`` (name ->
    topic configs, e.g. cleanup.policy); return the names created.

    Existing topics are left alone (their partition count is not changed). Waits until the
    metadata shows every requested topic, so a consumer subscribing right after sees them.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **client_options)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in topics if name not in existing]
        created: list[str] = []
        if missing:
            response = await admin.create_topics(
                [
                    NewTopic(
                        n,
                        topics[n],
                        replication_factor,
                        topic_configs=dict((configs or {}).get(n, {})),
                    )
                    for n in missing
                ],
                timeout_ms=int(timeout_s * 1000),
            )
            for entry in response.topic_errors:
                name, code = entry[0], entry[1]
                if code == 0:
                    created.append(name)
                elif code != _TOPIC_ALREADY_EXISTS:  # lost a race with another creator: fine
                    detail = entry[2] if len(entry) > 2 else ""
                    raise TopicCreationError(f"cannot create topic {name!r}: code {code} {detail}")
        deadline = time.monotonic() + timeout_s
        while True:
            described = await admin.describe_topics(list(topics))
            ready = {t["topic"] for t in described if t["error_code"] == 0 and t["partitions"]}
            if ready >= set(topics):
                return created
            if time.monotonic() > deadline:
                raise TopicCreationError(f"topics not visible in metadata: {set(topics) - ready}")
            await asyncio.sleep(0.05)
    finally:
        await admin.close()
