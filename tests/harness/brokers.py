"""The broker an integration suite runs against, chosen by TEST_BROKER:
``tansu`` (default: the embedded broker, no JDK needed) or ``apache-kafka`` (tests/harness/
apache_kafka.py: Apache Kafka 4 from Maven Central, needs a JDK and Maven or a warm .cache/)."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import Protocol

from beaconwatch.embedded.tansu import EmbeddedBroker
from tests.harness.apache_kafka import ApacheKafkaBroker

BROKER_ENV = "TEST_BROKER"
KINDS = ("tansu", "apache-kafka")


class BrokerUnderTest(Protocol):
    """What the suites need of a broker: where it listens, and its port (for clash tests)."""

    @property
    def bootstrap_servers(self) -> str: ...

    port: int | None


def broker_kind() -> str:
    kind = os.environ.get(BROKER_ENV, "tansu").strip().lower() or "tansu"
    if kind not in KINDS:
        raise ValueError(f"{BROKER_ENV}={kind!r}: expected one of {', '.join(KINDS)}")
    return kind


def broker_under_test(kind: str | None = None) -> AbstractContextManager[BrokerUnderTest]:
    """A context manager that starts the chosen broker and stops it on exit."""
    if (kind or broker_kind()) == "apache-kafka":
        return ApacheKafkaBroker()
    return EmbeddedBroker()
