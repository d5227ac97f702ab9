"""OAUTHBEARER with tokens from an OpenID Connect provider: the service fetches them with the
client-credentials grant from a real provider (oidc-provider on Node.js, tests/harness/oidc.py)
and Apache Kafka checks them against the provider's keys (signature, expiry, issuer, audience)
with its JWKS validator, not the unsecured test one."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr

from beaconwatch.cli.run import broker_problem
from beaconwatch.config import Config
from beaconwatch.runtime.kafka_options import client_options
from beaconwatch.runtime.oauth_token import ClientCredentialsTokenProvider
from beaconwatch.runtime.topics import create_topics
from tests.apache_kafka.test_security import produce, read_all, unsecured_jwt
from tests.harness.apache_kafka import ApacheKafkaBroker, SecureListeners
from tests.harness.oidc import AUDIENCE, OidcProvider
from tests.harness.tls import make_pki
from tests.integration.conftest import KafkaTestKit, Names, make_config, running_service
from tests.integration.test_service import BEACONS, generate_flows

pytestmark = pytest.mark.integration

CLIENT_ID, CLIENT_SECRET = "beaconwatch", "Client-S3cret-for-tokens"
# Short-lived tokens: the service's connections outlive several, and renewal is seen in a test.
TOKEN_TTL_S = 4


@dataclass(frozen=True)
class OidcKafka:
    broker: ApacheKafkaBroker
    idp: OidcProvider
    ca_cert: Path


@pytest.fixture(scope="module")
def oidc_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcKafka]:
    pki = make_pki(tmp_path_factory.mktemp("tls"))
    with OidcProvider(CLIENT_ID, CLIENT_SECRET, token_ttl_s=TOKEN_TTL_S) as idp:
        listeners = SecureListeners(
            pki.broker_keystore, pki.ca_cert, oidc=(idp.jwks_url, idp.issuer, AUDIENCE)
        )
        with ApacheKafkaBroker(secure=listeners) as broker:
            yield OidcKafka(broker, idp, pki.ca_cert)


def oidc_config(env: OidcKafka, names: Names, **kafka: object) -> Config:
    settings: dict[str, object] = {
        "bootstrap_servers": env.broker.address("SASL_SSL"),
        "security_protocol": "SASL_SSL",
        "ssl_cafile": str(env.ca_cert),
        "sasl_mechanism": "OAUTHBEARER",
        "sasl_oauth_token_endpoint": env.idp.token_endpoint,
        "sasl_oauth_client_id": CLIENT_ID,
        "sasl_oauth_client_secret": CLIENT_SECRET,
        **kafka,
    }
    return make_config(env.broker, names, **settings)


async def test_beacons_are_alerted_with_tokens_from_the_provider(
    oidc_kafka: OidcKafka, names: Names
) -> None:
    config = oidc_config(oidc_kafka, names)
    assert await broker_problem(config) is None
    await create_topics(topics={names.input: 2}, **client_options(config.kafka))
    await produce(config, names.input, generate_flows(seed=7))
    async with running_service(config) as run:
        await KafkaTestKit.wait_until(
            lambda: len(run.alerts) >= len(BEACONS), timeout_s=60, what="alerts"
        )
    alerts = [orjson.loads(v) for v in await read_all(config, names.alerts, len(BEACONS))]
    assert {(a["source"]["ip"], a["destination"]["ip"]) for a in alerts} == {
        (src, dst) for src, dst, _ in BEACONS
    }


async def test_a_wrong_client_secret_is_refused_by_the_provider_in_one_line(
    oidc_kafka: OidcKafka, names: Names
) -> None:
    wrong = "Not-The-Client-Secret"
    problem = await broker_problem(oidc_config(oidc_kafka, names, sasl_oauth_client_secret=wrong))
    assert problem is not None and "\n" not in problem
    assert (
        f"kafka.sasl_oauth_token_endpoint {oidc_kafka.idp.token_endpoint} refused: "
        "HTTP 401 invalid_client"
    ) in problem, problem
    assert wrong not in problem and CLIENT_SECRET not in problem


async def test_the_broker_checks_the_signature(
    oidc_kafka: OidcKafka, names: Names, tmp_path: Path
) -> None:
    # An unsigned token that the unsecured validator would take (test_security.py does).
    token = tmp_path / "token"
    token.write_text(unsecured_jwt(CLIENT_ID))
    config = oidc_config(
        oidc_kafka,
        names,
        sasl_oauth_token_endpoint=None,
        sasl_oauth_client_id=None,
        sasl_oauth_client_secret=None,
        sasl_oauth_token_file=str(token),
    )
    problem = await broker_problem(config)
    assert problem is not None and "SASL OAUTHBEARER login with the token from" in problem, problem


async def test_a_token_is_fetched_again_before_it_expires(oidc_kafka: OidcKafka) -> None:
    provider = ClientCredentialsTokenProvider(
        oidc_kafka.idp.token_endpoint, CLIENT_ID, SecretStr(CLIENT_SECRET)
    )
    first = await provider.token()
    assert await provider.token() == first  # reused while young
    claims = json.loads(base64.urlsafe_b64decode(first.split(".")[1] + "=="))
    assert claims["exp"] - claims["iat"] == TOKEN_TTL_S and claims["aud"] == AUDIENCE
    await asyncio.sleep(TOKEN_TTL_S * 0.85)  # past 80 % of its lifetime
    assert await provider.token() != first
