"""Connection options shared by every aiokafka client the service creates (consumer, producer,
admin), built from ``[kafka]`` config so security settings cannot drift between clients."""

from __future__ import annotations

from typing import Any

from beaconwatch.config import KafkaConfig


def client_options(kafka: KafkaConfig) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaConsumer/AIOKafkaProducer/AIOKafkaAdminClient."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
        "retry_backoff_ms": kafka.retry_backoff_ms,
    }
    if kafka.security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        options["ssl_context"] = create_ssl_context()  # system trust store
    if kafka.security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = kafka.sasl_mechanism or "PLAIN"
        options["sasl_plain_username"] = kafka.sasl_username
        password = kafka.sasl_password
        options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options


def redacted(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` safe to log: secrets replaced."""
    return {k: ("***" if "password" in k and v else v) for k, v in options.items()}
