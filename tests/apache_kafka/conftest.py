"""Tests only Apache Kafka can back (idempotent producers, compaction, a clean group hand-over):
one Apache Kafka broker (tests/harness/apache_kafka.py) per session, whatever TEST_BROKER says.
The integration suite's helpers (`kit`, `names`) work unchanged on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.apache_kafka import ApacheKafkaBroker
from tests.integration.conftest import KafkaTestKit, Names, kit, names

__all__ = ["KafkaTestKit", "Names", "apache_kafka", "broker", "kit", "names"]


@pytest.fixture(scope="session")
def apache_kafka() -> Iterator[ApacheKafkaBroker]:
    with ApacheKafkaBroker() as b:
        yield b


@pytest.fixture(scope="session")
def broker(apache_kafka: ApacheKafkaBroker) -> ApacheKafkaBroker:
    return apache_kafka
