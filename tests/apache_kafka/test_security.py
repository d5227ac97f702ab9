"""Kafka security on a real broker: Apache Kafka with an mTLS listener (SSL, client
certificates required) and a SASL_SSL listener (PLAIN, SCRAM-SHA-256/512, OAUTHBEARER), with
certificates made by the test (tests/harness/tls.py).

Each round trip goes through the secured listener only: the test's producer and reader, and
the service's consumers, producer and admin, all built by `client_options` from the config.
The refusals (an untrusted CA, no client certificate, a wrong password) must come out of
`beaconwatch run`'s pre-flight check as one line, without a traceback or the secret."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from beaconwatch.cli import main
from beaconwatch.cli.run import broker_problem
from beaconwatch.config import Config
from beaconwatch.runtime.kafka_options import client_options
from beaconwatch.runtime.log_setup import setup_logging
from beaconwatch.runtime.topics import create_topics
from tests.harness.apache_kafka import ApacheKafkaBroker, SecureListeners
from tests.harness.tls import TestPki, make_pki
from tests.integration.conftest import KafkaTestKit, Names, make_config, running_service
from tests.integration.test_service import BEACONS, Record, generate_flows

pytestmark = pytest.mark.integration

USER, PASSWORD = "beaconwatch", "Sasl-Pa55word-1234"
WRONG_PASSWORD = "Wr0ng-Pa55word-5678"


@dataclass(frozen=True)
class SecureBroker:
    broker: ApacheKafkaBroker
    pki: TestPki
    token_file: Path  # an unsecured JWT for OAUTHBEARER


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    directory = tmp_path_factory.mktemp("tls")
    pki = make_pki(directory)
    token_file = directory / "token"
    token_file.write_text(unsecured_jwt("beaconwatch") + "\n")
    listeners = SecureListeners(pki.broker_keystore, pki.ca_cert, {USER: PASSWORD})
    with ApacheKafkaBroker(secure=listeners) as broker:
        yield SecureBroker(broker, pki, token_file)


def unsecured_jwt(subject: str, lifetime_s: int = 3600) -> str:
    """A JWT with {"alg": "none"}: what Kafka's default (test-only) OAUTHBEARER validator
    accepts."""

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    now = int(time.time())
    return f"{part({'alg': 'none'})}.{part({'sub': subject, 'iat': now, 'exp': now + lifetime_s})}."


def security(secure: SecureBroker, variant: str, *, password: str = PASSWORD) -> dict[str, object]:
    """[kafka] settings of one way in: "mtls", or a SASL mechanism over SASL_SSL."""
    pki = secure.pki
    if variant == "mtls":
        return {
            "bootstrap_servers": secure.broker.address("SSL"),
            "security_protocol": "SSL",
            "ssl_cafile": str(pki.ca_cert),
            "ssl_certfile": str(pki.client_cert),
            "ssl_keyfile": str(pki.client_key),
            "ssl_key_password": pki.client_key_password,
        }
    settings: dict[str, object] = {
        "bootstrap_servers": secure.broker.address("SASL_SSL"),
        "security_protocol": "SASL_SSL",
        "ssl_cafile": str(pki.ca_cert),
        "sasl_mechanism": variant,
    }
    if variant == "OAUTHBEARER":
        return {**settings, "sasl_oauth_token_file": str(secure.token_file)}
    return {**settings, "sasl_username": USER, "sasl_password": password}


def secured_config(secure: SecureBroker, names: Names, **kafka: object) -> Config:
    return make_config(secure.broker, names, **kafka)


async def produce(config: Config, topic: str, records: Sequence[Record]) -> None:
    producer = AIOKafkaProducer(acks="all", **client_options(config.kafka))
    await producer.start()
    try:
        sends = [await producer.send(topic, value=v, key=k) for k, v in records]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def read_all(
    config: Config, topic: str, expected: int, timeout_s: float = 20.0
) -> list[bytes]:
    """The values of ``topic`` once ``expected`` are there, read through ``config``'s listener."""
    admin = AIOKafkaAdminClient(**client_options(config.kafka))
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    assert tps, f"no partitions of {topic}"
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_options(config.kafka))
    await consumer.start()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        values: list[bytes] = []
        deadline = time.monotonic() + timeout_s
        while len(values) < expected and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                values.extend(r.value for r in records if r.value is not None)
        return values
    finally:
        await consumer.stop()


VARIANTS = ["mtls", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]


@pytest.mark.parametrize("variant", VARIANTS)
async def test_beacons_are_alerted_through_a_secured_listener(
    secure: SecureBroker, names: Names, variant: str, caplog: pytest.LogCaptureFixture
) -> None:
    setup_logging("DEBUG")  # the service's logging at its most verbose
    caplog.set_level(logging.DEBUG)
    config = secured_config(secure, names, **security(secure, variant))
    assert await broker_problem(config) is None
    # The input topic is made by the admin client of these settings, flows sent through them.
    await create_topics(topics={names.input: 2}, **client_options(config.kafka))
    records = generate_flows(seed=5)
    await produce(config, names.input, records)

    async with running_service(config) as run:
        await KafkaTestKit.wait_until(
            lambda: len(run.alerts) >= len(BEACONS), timeout_s=60, what="alerts"
        )
    alerts = [orjson.loads(v) for v in await read_all(config, names.alerts, len(BEACONS))]
    alerted = {(a["source"]["ip"], a["destination"]["ip"]) for a in alerts}
    assert alerted == {(src, dst) for src, dst, _ in BEACONS}
    assert "beaconwatch starting" in caplog.text  # its settings logged, the secrets not
    for secret in (PASSWORD, secure.pki.client_key_password, secure.token_file.read_text()):
        assert secret.strip() not in caplog.text


def one_line(problem: str | None) -> str:
    assert problem is not None, "the pre-flight check let a refused connection through"
    assert "\n" not in problem and "Traceback" not in problem
    return problem


async def test_a_broker_signed_by_another_ca_is_refused_in_one_line(
    secure: SecureBroker, names: Names
) -> None:
    settings = {**security(secure, "mtls"), "ssl_cafile": str(secure.pki.other_ca_cert)}
    problem = one_line(await broker_problem(secured_config(secure, names, **settings)))
    assert "certificate is not trusted" in problem, problem
    assert "unable to get local issuer certificate" in problem, problem
    assert f"kafka.ssl_cafile ({secure.pki.other_ca_cert})" in problem, problem
    assert secure.pki.client_key_password not in problem


async def test_a_client_without_certificate_is_refused_on_the_mtls_listener(
    secure: SecureBroker, names: Names
) -> None:
    settings = {
        "bootstrap_servers": secure.broker.address("SSL"),
        "security_protocol": "SSL",
        "ssl_cafile": str(secure.pki.ca_cert),
    }
    config = secured_config(secure, names, **settings)
    problem = one_line(await broker_problem(config))
    assert "needs a client certificate" in problem and "kafka.ssl_certfile" in problem, problem
    # ...and a client that skipped the pre-flight check cannot get in either.
    producer = AIOKafkaProducer(**client_options(config.kafka), request_timeout_ms=5000)
    with pytest.raises(Exception, match="Unable to bootstrap"):
        await producer.start()
    await producer.stop()


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_a_wrong_password_is_refused_without_showing_it(
    secure: SecureBroker, names: Names, mechanism: str
) -> None:
    settings = security(secure, mechanism, password=WRONG_PASSWORD)
    problem = one_line(await broker_problem(secured_config(secure, names, **settings)))
    assert f"SASL {mechanism} login as {USER} refused" in problem, problem
    assert WRONG_PASSWORD not in problem and PASSWORD not in problem


@pytest.mark.parametrize("case", ["another CA", "no client certificate", "wrong password"])
def test_beaconwatch_run_says_why_in_one_line(
    secure: SecureBroker,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
) -> None:
    if case == "wrong password":
        settings = security(secure, "SCRAM-SHA-512", password=WRONG_PASSWORD)
        reason = (
            f"SASL SCRAM-SHA-512 login as {USER} refused: Authentication failed during "
            "authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
        )
    elif case == "another CA":
        settings = {**security(secure, "mtls"), "ssl_cafile": str(secure.pki.other_ca_cert)}
        reason = (
            "TLS: the broker's certificate is not trusted (unable to get local issuer "
            f"certificate); kafka.ssl_cafile ({secure.pki.other_ca_cert}) must hold the CA "
            "that signed it"
        )
    else:
        settings = security(secure, "mtls")
        del settings["ssl_certfile"], settings["ssl_keyfile"], settings["ssl_key_password"]
        reason = (
            "the broker closed the connection (a listener with ssl.client.auth=required needs "
            "a client certificate: kafka.ssl_certfile and kafka.ssl_keyfile)"
        )
    for key, value in settings.items():
        monkeypatch.setenv(f"BEACONWATCH_KAFKA__{key.upper()}", str(value))
    assert main(["run", "--workers", "1"]) == 1
    err = capsys.readouterr().err
    protocol = settings["security_protocol"]
    assert err.strip().splitlines() == [
        f"beaconwatch: cannot reach Kafka at {settings['bootstrap_servers']} "
        f"(kafka.bootstrap_servers, {protocol}): {reason}"
    ]


async def test_a_certificate_for_another_host_is_refused_unless_hostname_checks_are_off(
    tmp_path: Path, names: Names
) -> None:
    pki = make_pki(tmp_path, server_names=("kafka.example.internal",))  # not 127.0.0.1
    with ApacheKafkaBroker(secure=SecureListeners(pki.broker_keystore, pki.ca_cert)) as broker:
        settings = {
            "bootstrap_servers": broker.address("SSL"),
            "security_protocol": "SSL",
            "ssl_cafile": str(pki.ca_cert),
            "ssl_certfile": str(pki.client_cert),
            "ssl_keyfile": str(pki.client_key),
            "ssl_key_password": pki.client_key_password,
        }
        problem = one_line(await broker_problem(make_config(broker, names, **settings)))
        assert "certificate does not name the host dialled" in problem, problem
        assert "IP address mismatch" in problem and "ssl_check_hostname" in problem, problem
        unchecked = make_config(broker, names, **settings, ssl_check_hostname=False)
        assert await broker_problem(unchecked) is None  # the CA is still checked: it is ours


async def test_an_oauthbearer_token_is_read_again_at_each_connection(
    secure: SecureBroker, names: Names, tmp_path: Path
) -> None:
    token = tmp_path / "token"
    settings = {**security(secure, "OAUTHBEARER"), "sasl_oauth_token_file": str(token)}
    token.write_text(unsecured_jwt("beaconwatch", lifetime_s=-60))  # expired a minute ago
    config = secured_config(secure, names, **settings)
    problem = one_line(await broker_problem(config))
    assert f"SASL OAUTHBEARER login with the token from {token} refused" in problem, problem
    assert '"invalid_token"' in problem and "eyJ" not in problem, problem  # no token shown
    token.write_text("")
    problem = one_line(await broker_problem(config))
    assert f"kafka.sasl_oauth_token_file {token} is empty" in problem, problem
    rotated = tmp_path / "token.new"  # the platform's rotation: a new file moved in place
    rotated.write_text(unsecured_jwt("beaconwatch"))
    rotated.replace(token)
    assert await broker_problem(config) is None  # the same config, the new token
