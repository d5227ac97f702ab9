"""Connection options shared by every aiokafka client the service creates (consumer, producer,
admin), built from ``[kafka]`` config so security settings cannot drift between clients."""

from __future__ import annotations

from typing import Any

from beaconwatch.config import KafkaConfig
from beaconwatch.config_security import TLS_PROTOCOLS, tls_context


def client_options(kafka: KafkaConfig) -> dict[str, Any]:
    """Keyword arguments for AIOKafkaConsumer/AIOKafkaProducer/AIOKafkaAdminClient."""
    options: dict[str, Any] = {
        "bootstrap_servers": kafka.bootstrap_servers,
        "client_id": kafka.client_id,
        "security_protocol": kafka.security_protocol,
        "retry_backoff_ms": kafka.retry_backoff_ms,
    }
    if kafka.security_protocol in TLS_PROTOCOLS:
        options["ssl_context"] = tls_context(kafka)
    if kafka.security_protocol.startswith("SASL"):
        mechanism = kafka.sasl_mechanism or "PLAIN"
        options["sasl_mechanism"] = mechanism
        if mechanism == "OAUTHBEARER":
            from beaconwatch.runtime import oauth_sasl

            oauth_sasl.install()  # aiokafka alone takes a refused token for a login
            options["sasl_oauth_token_provider"] = _token_provider(kafka)
        else:
            options["sasl_plain_username"] = kafka.sasl_username
            password = kafka.sasl_password
            options["sasl_plain_password"] = password.get_secret_value() if password else None
    return options


def _token_provider(kafka: KafkaConfig) -> object:
    from beaconwatch.runtime.oauth_token import ClientCredentialsTokenProvider, FileTokenProvider

    if kafka.sasl_oauth_token_file:
        return FileTokenProvider(kafka.sasl_oauth_token_file)
    # Both set, checked by the config.
    assert kafka.sasl_oauth_token_endpoint and kafka.sasl_oauth_client_id
    assert kafka.sasl_oauth_client_secret is not None
    return ClientCredentialsTokenProvider(
        kafka.sasl_oauth_token_endpoint,
        kafka.sasl_oauth_client_id,
        kafka.sasl_oauth_client_secret,
        kafka.sasl_oauth_scope,
    )


def redacted(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` safe to log: secrets replaced."""
    return {k: ("***" if "password" in k and v else v) for k, v in options.items()}
