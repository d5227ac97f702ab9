"""Names through the real service on the embedded broker: ECS records with their SNI, and Zeek
conn records with the ssl records that name them, of two C2s that rotate across CDN edges of
many /24s; through the repartition stage and the internal topic (which carries the names) to
one name alert each, naming the domain, and no annotation counted as a flow; and header-less
Zeek TSV conn and ssl lines on two topics, the ssl topic configured as such."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import numpy as np
import orjson
import pytest

from beaconwatch.alerting.alert import CHANNEL_NAME
from beaconwatch.decode.zeek.zeek_columns import DEFAULT_FIELDS
from beaconwatch.embedded.tansu import create_topics
from beaconwatch.simulate.encoders import encoder
from beaconwatch.simulate.goflow2 import pair_key
from beaconwatch.simulate.model import SimFlow

if TYPE_CHECKING:
    from tests.integration.conftest import KafkaTestKit

pytestmark = pytest.mark.integration

ECS_C2, ZEEK_C2 = "ecs-c2.example.net", "zeek-c2.example.org"


def cdn_beacon(src: str, seed: int, start_ms: int, count: int = 70) -> list[SimFlow]:
    """Check-ins every 60 s +/- 10 %, each to another of 200 edges in as many /24s."""
    rng = np.random.default_rng(seed)
    edges = [f"23.{a}.{b}.{c}" for a, b, c in rng.integers([0, 0, 1], [256, 256, 255], (200, 3))]
    t, rows = float(start_ms), []
    for n in range(count):
        t += 60_000 * rng.uniform(0.9, 1.1)
        rows.append(SimFlow(int(t), int(t) + 900, src, edges[int(rng.integers(200))],
                            40_000 + n, 443, "TCP", 1_200, 8))  # fmt: skip
    return rows


def with_sni(record: bytes, name: str) -> bytes:
    doc = orjson.loads(record)
    doc.setdefault("tls", {}).setdefault("client", {})["server_name"] = name
    return orjson.dumps(doc)


def ssl_record(flow: SimFlow, name: str) -> bytes:
    return json.dumps({
        "ts": flow.start_ms / 1000, "uid": f"C{flow.src_port}", "id.orig_h": flow.src_ip,
        "id.orig_p": flow.src_port, "id.resp_h": flow.dst_ip, "id.resp_p": flow.dst_port,
        "version": "TLSv13", "server_name": name, "established": True, "_path": "ssl",
    }).encode()  # fmt: skip


async def test_named_c2_across_cdn_edges_alerts_once_with_its_domain(kit: KafkaTestKit) -> None:
    start_ms = int(time.time() * 1000) - 3 * 3_600_000
    ecs_flows = cdn_beacon("10.1.0.5", 1, start_ms)
    zeek_flows = cdn_beacon("10.2.0.5", 2, start_ms)
    topics = {"ecs-json": f"{kit.names.input}-ecs", "zeek-json": f"{kit.names.input}-zeek"}
    await create_topics(kit.broker.bootstrap_servers, dict.fromkeys(topics.values(), 2))
    ecs = [with_sni(r, ECS_C2) for r in encoder("ecs-json")(ecs_flows)]
    await kit.produce(topics["ecs-json"],
                      [(pair_key(f), r) for f, r in zip(ecs_flows, ecs, strict=True)])  # fmt: skip
    # Zeek: the ssl record at the handshake, the conn record at the end; keyed by uid (the
    # Kafka plugin's default is no key: any partition), so they meet only after repartition.
    conns = encoder("zeek-json")(zeek_flows)
    zeek = [(f"C{f.src_port}".encode(), r) for f, c in zip(zeek_flows, conns, strict=True)
            for r in (ssl_record(f, ZEEK_C2), c)]  # fmt: skip
    await kit.produce(topics["zeek-json"], zeek)

    config = kit.config(
        input_topics=list(topics.values()),
        topic_formats={topic: name for name, topic in topics.items()},
    )
    async with kit.running(config) as run:
        registry = run.service.registry
        total = len(ecs) + len(zeek)
        await kit.wait_until(lambda: run.consumed() == total, timeout_s=120, what="all consumed")
        await kit.drained(run)
        # The ssl records are annotations: only the connections are flows.
        flows = len(ecs_flows) + len(zeek_flows)
        assert kit.metric(registry, "beaconwatch_flows_accepted_total") == flows
        assert kit.metric(registry, "beaconwatch_dead_letter_records_total") == 0

    new = sorted((a.src_ip, a.channel, a.dst_domain) for a in run.alerts if a.lifecycle == "new")
    assert new == [("10.1.0.5", CHANNEL_NAME, ECS_C2), ("10.2.0.5", CHANNEL_NAME, ZEEK_C2)]
    assert all(a.channel == CHANNEL_NAME for a in run.alerts)  # no pair or prefix repeats it
    records = await kit.read_topic(kit.names.alerts, expected=len(run.alerts))
    docs = [orjson.loads(r.value) for r in records]
    assert sorted({d["destination"]["domain"] for d in docs}) == [ECS_C2, ZEEK_C2]
    assert all(d["destination"]["ip"].startswith("23.") for d in docs)


def ssl_tsv_line(flow: SimFlow, name: str) -> bytes:
    """A header-less Zeek ssl.log line (Zeek's default columns), as a log shipper sends it."""
    values = {
        "ts": f"{flow.start_ms / 1000:.6f}", "uid": f"C{flow.src_port}", "id.orig_h": flow.src_ip,
        "id.orig_p": str(flow.src_port), "id.resp_h": flow.dst_ip,
        "id.resp_p": str(flow.dst_port), "version": "TLSv13", "server_name": name,
        "resumed": "F", "established": "T", "ssl_history": "CsiI",
    }  # fmt: skip
    return "\t".join(values.get(f, "-") for f in DEFAULT_FIELDS["ssl"]).encode()


async def test_zeek_tsv_conn_and_ssl_topics_name_the_c2(kit: KafkaTestKit) -> None:
    """Zeek TSV lines without a header, one log per topic (Filebeat/Vector tailing conn.log
    and ssl.log): the ssl topic is configured as such (`kafka.zeek_tsv_topics`), the conn
    topic keeps the default. The ssl lines are read before the conn lines, as in real time
    (Zeek writes a connection's ssl record at its handshake, its conn record at its end):
    notes name only conn records read after them."""
    start_ms = int(time.time() * 1000) - 3 * 3_600_000
    flows = cdn_beacon("10.3.0.5", 3, start_ms)
    conn_topic, ssl_topic = f"{kit.names.input}-zeek-conn", f"{kit.names.input}-zeek-ssl"
    await create_topics(kit.broker.bootstrap_servers, {conn_topic: 2, ssl_topic: 2})
    ssl = [(None, ssl_tsv_line(f, ZEEK_C2)) for f in flows]  # shippers send no key
    conns = [(None, line) for line in encoder("zeek-tsv")(flows)]
    await kit.produce(ssl_topic, ssl)
    config = kit.config(
        input_topics=[conn_topic, ssl_topic],
        input_format="zeek-tsv",
        zeek_tsv_topics={ssl_topic: {"log": "ssl"}},
    )
    async with kit.running(config) as run:
        registry = run.service.registry
        await kit.wait_until(lambda: run.consumed() == len(ssl), timeout_s=120, what="ssl read")
        await kit.drained(run)
        await kit.produce(conn_topic, conns)
        total = len(ssl) + len(conns)
        await kit.wait_until(lambda: run.consumed() == total, timeout_s=120, what="all consumed")
        await kit.drained(run)
        assert kit.metric(registry, "beaconwatch_flows_accepted_total") == len(flows)
        assert kit.metric(registry, "beaconwatch_dead_letter_records_total") == 0

    new = [(a.src_ip, a.channel, a.dst_domain) for a in run.alerts if a.lifecycle == "new"]
    assert new == [("10.3.0.5", CHANNEL_NAME, ZEEK_C2)]
    assert all(a.channel == CHANNEL_NAME for a in run.alerts)
