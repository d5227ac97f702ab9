"""The output producer every stage uses: acks=all, batches sized for storms of small records."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from beaconwatch.config import ConfigError, KafkaConfig
from beaconwatch.runtime.kafka_options import client_options


async def start_producer(kafka: KafkaConfig) -> AIOKafkaProducer:
    """A started producer; an idempotent one the broker refuses is a config error.

    Tansu (and some managed services) lack idempotent producers, so it is opt-in; acks=all
    plus commit-after-ack gives at-least-once without it. Batches of up to
    producer_batch_bytes per partition: aiokafka keeps one batch in flight per partition and
    its 16 KiB default made a storm of dead letters wait a broker round trip every ~15 records.
    """
    producer = AIOKafkaProducer(
        acks="all",
        enable_idempotence=kafka.idempotent_producer,
        max_batch_size=kafka.producer_batch_bytes,
        linger_ms=kafka.producer_linger_ms,
        **client_options(kafka),
    )
    try:
        await producer.start()  # an idempotent producer asks for its producer id here
    except KafkaError as exc:
        await producer.stop()
        if not kafka.idempotent_producer:
            raise
        raise ConfigError(
            f"kafka.idempotent_producer = true, but the broker at {kafka.bootstrap_servers} "
            f"refused an idempotent producer ({exc!r}); set it false for brokers without "
            "idempotent producers (the embedded Tansu broker, some managed services)"
        ) from exc
    return producer
