"""[kafka] TLS and SASL settings: checked at start-up with messages naming the key and file,
secrets read as text and never shown; the client options built from them (the broker round
trips are in tests/apache_kafka/test_security.py)."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest

from beaconwatch.config import ConfigError, load_config
from beaconwatch.runtime.kafka_options import client_options, redacted
from beaconwatch.runtime.oauth_token import (
    ClientCredentialsTokenProvider,
    FileTokenProvider,
    TokenFileError,
)
from beaconwatch.runtime.topics import service_topic_configs
from tests.harness.tls import TestPki, make_pki

KEY_PASSWORD = "Key-Pa55word-0042"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_pki(tmp_path_factory.mktemp("tls"), client_key_password=KEY_PASSWORD)


def mtls_env(pki: TestPki, **overrides: str) -> dict[str, str]:
    settings = {
        "security_protocol": "SSL",
        "ssl_cafile": str(pki.ca_cert),
        "ssl_certfile": str(pki.client_cert),
        "ssl_keyfile": str(pki.client_key),
        "ssl_key_password": KEY_PASSWORD,
        **overrides,
    }
    return {f"BEACONWATCH_KAFKA__{k.upper()}": v for k, v in settings.items()}


def test_mtls_settings_give_a_context_that_verifies_the_broker_and_holds_the_client_cert(
    pki: TestPki,
) -> None:
    config = load_config(env=mtls_env(pki))
    options = client_options(config.kafka)
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [c["subject"] for c in context.get_ca_certs()] == [
        ((("commonName", "beaconwatch test CA"),),)
    ]
    assert KEY_PASSWORD not in repr(config) and KEY_PASSWORD not in repr(redacted(options))
    unchecked = load_config(env=mtls_env(pki, ssl_check_hostname="false"))
    context = client_options(unchecked.kafka)["ssl_context"]
    assert not context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED


def test_a_missing_file_is_named(pki: TestPki, tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "ca.pem"
    for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        with pytest.raises(ConfigError) as err:
            load_config(env=mtls_env(pki, **{key: str(missing)}))
        assert f"kafka.{key}" in str(err.value) and f"file not found: {missing}" in str(err.value)
        assert KEY_PASSWORD not in str(err.value)
    with pytest.raises(
        ConfigError, match=f"kafka.ssl_cafile: .*a directory, not a file: {tmp_path}"
    ):
        load_config(env=mtls_env(pki, ssl_cafile=str(tmp_path)))


def test_a_key_its_password_does_not_open_stops_start_up_without_showing_it(
    pki: TestPki,
) -> None:
    wrong = "Not-The-Key-Password"
    no_password = mtls_env(pki)
    del no_password["BEACONWATCH_KAFKA__SSL_KEY_PASSWORD"]  # and never a terminal prompt
    for env in (mtls_env(pki, ssl_key_password=wrong), no_password):
        with pytest.raises(ConfigError) as err:
            load_config(env=env)
        message = str(err.value)
        assert "cannot load the client certificate and key" in message, message
        assert "ssl_key_password" in message and str(pki.client_key) in message
        assert wrong not in message and KEY_PASSWORD not in message


def test_a_file_that_is_not_a_certificate_is_an_error_naming_it(pki: TestPki) -> None:
    with pytest.raises(ConfigError, match=f"ssl_cafile {pki.client_key}: no usable PEM CA"):
        load_config(env=mtls_env(pki, ssl_cafile=str(pki.client_key)))


def test_a_key_password_is_text_whatever_it_looks_like(tmp_path: Path) -> None:
    pki = make_pki(tmp_path, client_key_password="12345")
    env = mtls_env(pki, ssl_key_password="12345")
    config = load_config(env=env)
    assert config.kafka.ssl_key_password is not None
    assert config.kafka.ssl_key_password.get_secret_value() == "12345"
    cfg = tmp_path / "c.toml"
    del env["BEACONWATCH_KAFKA__SSL_KEY_PASSWORD"]
    cfg.write_text("[kafka]\nssl_key_password = 12345\n")  # a TOML integer
    assert load_config(cfg, env=env).kafka.ssl_key_password is not None


def test_settings_that_do_not_fit_together_are_errors(pki: TestPki, tmp_path: Path) -> None:
    cases = {
        "ssl_cafile set, but security_protocol = PLAINTEXT does not use TLS": {
            "security_protocol": "PLAINTEXT",
            "ssl_cafile": str(pki.ca_cert),
        },
        "ssl_keyfile needs ssl_certfile": {
            "security_protocol": "SSL",
            "ssl_keyfile": str(pki.client_key),
        },
        "sasl_mechanism = SCRAM-SHA-512 needs sasl_username and sasl_password": {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_username": "beaconwatch",
        },
        "sasl_mechanism = OAUTHBEARER needs sasl_oauth_token_file": {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": "OAUTHBEARER",
        },
        "topic_min_insync_replicas must be at most topic_replication_factor": {
            "topic_replication_factor": "2",
            "topic_min_insync_replicas": "3",
        },
    }
    for expected, settings in cases.items():
        env = {f"BEACONWATCH_KAFKA__{k.upper()}": v for k, v in settings.items()}
        with pytest.raises(ConfigError, match=expected):
            load_config(env=env)


def test_oauthbearer_reads_the_token_file_at_every_connection(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("first.token.\n")
    env = {
        "BEACONWATCH_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
        "BEACONWATCH_KAFKA__SASL_MECHANISM": "OAUTHBEARER",
        "BEACONWATCH_KAFKA__SASL_OAUTH_TOKEN_FILE": str(token),
    }
    options = client_options(load_config(env=env).kafka)
    provider = options["sasl_oauth_token_provider"]
    assert isinstance(provider, FileTokenProvider) and "sasl_plain_password" not in options
    assert asyncio.run(provider.token()) == "first.token."
    rotated = tmp_path / "token.new"  # rotated as Kubernetes does: a new file moved in place
    rotated.write_text("second.token.")
    rotated.replace(token)
    assert asyncio.run(provider.token()) == "second.token."
    assert "token." not in repr(provider)
    token.write_text("")
    with pytest.raises(TokenFileError, match="is empty"):
        asyncio.run(provider.token())


def test_created_topics_get_their_retention_compaction_and_min_insync_replicas() -> None:
    env = {
        "BEACONWATCH_KAFKA__ALERTS_RETENTION_MS": "2592000000",
        "BEACONWATCH_KAFKA__DEAD_LETTER_RETENTION_MS": "604800000",
        "BEACONWATCH_KAFKA__TOPIC_REPLICATION_FACTOR": "3",
        "BEACONWATCH_KAFKA__TOPIC_MIN_INSYNC_REPLICAS": "2",
    }
    kafka = load_config(env=env).kafka
    assert service_topic_configs(kafka) == {
        kafka.alerts_topic: {"retention.ms": "2592000000", "min.insync.replicas": "2"},
        kafka.dead_letter_topic: {"retention.ms": "604800000", "min.insync.replicas": "2"},
        kafka.internal_topic: {"min.insync.replicas": "2"},  # the broker's retention
        kafka.state_topic: {"cleanup.policy": "compact", "min.insync.replicas": "2"},
    }
    assert service_topic_configs(load_config(env={}).kafka)[kafka.state_topic] == {
        "cleanup.policy": "compact"
    }


def test_oauthbearer_from_a_token_endpoint_needs_a_client_and_https(tmp_path: Path) -> None:
    base = {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "OAUTHBEARER",
        "sasl_oauth_token_endpoint": "https://idp.example.com/oauth2/token",
        "sasl_oauth_client_id": "beaconwatch",
        "sasl_oauth_client_secret": "4711",  # a secret that looks like a number stays text
    }

    def env(**overrides: str) -> dict[str, str]:
        return {f"BEACONWATCH_KAFKA__{k.upper()}": v for k, v in {**base, **overrides}.items()}

    options = client_options(load_config(env=env()).kafka)
    provider = options["sasl_oauth_token_provider"]
    assert isinstance(provider, ClientCredentialsTokenProvider)
    assert "4711" not in repr(provider) and "4711" not in repr(redacted(options))
    token = tmp_path / "token"
    token.write_text("t")
    cases = {
        "needs sasl_oauth_token_file or sasl_oauth_token_endpoint": env(
            sasl_oauth_token_file=str(token)
        ),
        "must be an https:// URL": env(sasl_oauth_token_endpoint="http://idp.example.com/token"),
        "needs sasl_oauth_client_id and sasl_oauth_client_secret": env(sasl_oauth_client_id=""),
    }
    for expected, settings in cases.items():
        with pytest.raises(ConfigError, match=expected) as err:
            load_config(env=settings)
        assert "4711" not in str(err.value)
    loopback = env(sasl_oauth_token_endpoint="http://127.0.0.1:8080/token")
    assert load_config(env=loopback).kafka.sasl_oauth_token_endpoint == (
        "http://127.0.0.1:8080/token"
    )
