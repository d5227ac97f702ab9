"""Names through the real service on the embedded broker: ECS records with their SNI, and Zeek
conn records with the ssl records that name them, of two C2s that rotate across CDN edges of
many /24s; through the repartition stage and the internal topic (which carries the names) to
one name alert each, naming the domain, and no annotation counted as a flow."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import numpy as np
import orjson
import pytest

from beaconwatch.alerting.alert import CHANNEL_NAME
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
