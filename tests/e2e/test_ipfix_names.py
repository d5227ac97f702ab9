"""IPFIX with names, end to end: an exporter's enterprise SNI element -> real goflow2 with our
mapping file (config/goflow2-names.yaml) -> Apache Kafka -> beaconwatch reads the names.

    tests/e2e/ipfix_names.py (IPFIX with ipfixprobe's TLS_SNI 8057/808 and HTTP_DOMAIN 39499/1)
        -> goflow2 v2.2.6 -mapping=config/goflow2-names.yaml -format=json | bin -> Kafka
        -> goflow2-json / goflow2-pb decoders, and a beaconwatch service on the topic

The exporter is a small one of ours: no exporter that puts the SNI in IPFIX (ipfixprobe,
nProbe, YAF) is installable here (neither a Debian package nor on PyPI). It writes the
templates and records the way ipfixprobe's tls and http plugins do (variable-length
enterprise elements; a flow without an SNI gets a zero-length value). The C2 rotates across
CDN edges in 70 /24s under one SNI: only its name ties the check-ins together, so the
service's one name alert proves that goflow2 carried the name and the decoder read it.
Tools: make e2e-tools."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import orjson
import pytest

from beaconwatch.alerting.alert import CHANNEL_NAME
from beaconwatch.decode.registry import get_decoder
from beaconwatch.runtime.topics import create_topics
from tests.e2e.collectors import (
    REPO,
    Goflow2Format,
    _topic_size,
    _wait_for_records,
    free_udp_port,
    goflow2_binary,
    goflow2_kafka,
)
from tests.e2e.ipfix_names import HTTP_DOMAIN, NamedFlow, messages, send
from tests.harness.apache_kafka import ApacheKafkaBroker
from tests.integration.conftest import KafkaTestKit, Names, read_topic

pytestmark = pytest.mark.integration

MAPPING = REPO / "config" / "goflow2-names.yaml"
C2_SNI = b"Updates.C2-Example.NET"  # as the implant's ClientHello writes it
C2_NAME = "updates.c2-example.net"  # the flow's name: lower case
HTTP_HOST = b"Repo.Example.ORG:8080"  # an HTTP Host header, port and all
HTTP_NAME = "repo.example.org"


@pytest.fixture(scope="module")
def apache_kafka() -> Iterator[ApacheKafkaBroker]:
    with ApacheKafkaBroker() as broker:
        yield broker


def c2_and_noise(start_ms: int) -> list[NamedFlow]:
    """70 check-ins every 60 s +/- 10 % to an edge in another /24 each time, all with the C2's
    SNI; a browsing host's flows without an SNI, with garbage for one, and with an IP literal;
    plain HTTP flows with their Host (ipfixprobe's http plugin)."""
    rng = np.random.default_rng(14)
    t, flows = float(start_ms), []
    for n in range(70):
        t += 60_000 * rng.uniform(0.9, 1.1)
        edge = f"23.{n}.{int(rng.integers(256))}.{int(rng.integers(1, 255))}"
        flows.append(NamedFlow("10.4.0.5", edge, 40_000 + n, 443, int(t), int(t) + 900,
                               1_200, 8, C2_SNI))  # fmt: skip
    for k, sni in enumerate([None, b"\xff\xfe\x00", b"198.51.100.7", None]):
        at = start_ms + 600_000 * k
        flows.append(NamedFlow("10.4.0.9", f"198.51.100.{k + 1}", 50_000 + k, 443, at, at + 50,
                               3_000, 12, sni))  # fmt: skip
    for k in range(3):
        at = start_ms + 900_000 * k
        flows.append(NamedFlow("10.4.0.9", "203.0.113.80", 51_000 + k, 8080, at, at + 80,
                               700, 6, HTTP_HOST, HTTP_DOMAIN))  # fmt: skip
    return flows


def publish(broker: ApacheKafkaBroker, flows: list[NamedFlow], fmt: Goflow2Format,
            topic: str, workdir: Path) -> int:  # fmt: skip
    """The IPFIX messages through goflow2 with the mapping into ``topic``: records on it."""
    asyncio.run(create_topics(broker.bootstrap_servers, {topic: 1}))
    port = free_udp_port()
    with goflow2_kafka(goflow2_binary(), port, broker.bootstrap_servers, topic, fmt, workdir,
                       mapping=MAPPING):  # fmt: skip
        send(messages(flows), port)
        asyncio.run(_wait_for_records(broker, topic, len(flows), timeout_s=30))
    return asyncio.run(_topic_size(broker, topic))


@pytest.mark.parametrize(("fmt", "input_format"), [("json", "goflow2-json"), ("bin", "goflow2-pb")])
async def test_goflow2_carries_the_sni_and_the_c2_gets_one_name_alert(
    fmt: Goflow2Format, input_format: str, apache_kafka: ApacheKafkaBroker, tmp_path: Path
) -> None:
    flows = c2_and_noise(int(time.time() * 1000) - 3 * 3_600_000)
    tag = uuid.uuid4().hex[:8]
    topic = f"ipfix-names-{fmt}-{tag}"
    loop = asyncio.get_running_loop()
    published = await loop.run_in_executor(None, publish, apache_kafka, flows, fmt, topic,
                                           tmp_path)  # fmt: skip
    assert published == len(flows)  # each flow once

    # What goflow2 wrote, read by our decoder: every flow, the C2's named, no other.
    records = [r.value for r in await read_topic(apache_kafka, topic, expected=len(flows))]
    if fmt == "json":  # goflow2 writes the mapped bytes as hex, under the mapped name
        assert orjson.loads(records[0])["server_name"] == C2_SNI.hex()
    result = get_decoder(input_format).decode(records)
    assert result.rejections == [] and len(result.flows) == len(flows)
    named = {
        (int(port), result.flows.names.get(h))
        for port, h in zip(result.flows.src_port, result.flows.name_hash.tolist(), strict=True)
    }
    expected = {C2_SNI: C2_NAME, HTTP_HOST: HTTP_NAME}
    assert named == {(f.src_port, expected.get(f.name or b"")) for f in flows}

    # And through a beaconwatch service on the topic: one alert, the name's.
    kit = KafkaTestKit(apache_kafka, Names(topic, f"alerts-{tag}", f"dlq-{tag}", f"group-{tag}"))
    async with kit.running(kit.config(topic_formats={topic: input_format})) as run:
        await kit.wait_until(lambda: run.consumed() == len(flows), timeout_s=60, what="consumed")
        await kit.drained(run)
        registry = run.service.registry
        assert kit.metric(registry, "beaconwatch_dead_letter_records_total") == 0
        assert kit.metric(registry, "beaconwatch_flows_accepted_total") == len(flows)
    new = [(a.src_ip, a.channel, a.dst_domain) for a in run.alerts if a.lifecycle == "new"]
    assert new == [("10.4.0.5", CHANNEL_NAME, C2_NAME)]
