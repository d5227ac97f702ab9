"""One service, five input topics, one collector format each: the same alerts from every topic.

Each topic is one *site*: the same simulated traffic (background plus planted beacons), with the
site's own internal address prefix, written by the site's collector in its format
(goflow2-json, goflow2-pb, pmacct-json, ecs-json, zeek-json) and read by ONE service instance
subscribed to all five with ``kafka.topic_formats``. Every site must alert on exactly its
planted pairs, with identical statistics.

Why distinct sites and not the identical flows on five topics: the pair table is keyed by
(source, destination, port, protocol), not by input, so identical flows on several topics are
the same connections seen by several exporters; that case is about de-duplication across
inputs, not about formats.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import orjson
import pytest

from beaconwatch.alerting.alert import Alert
from beaconwatch.embedded.tansu import create_topics
from beaconwatch.simulate.encoders import encoder
from beaconwatch.simulate.generator import SimulationSpec, TrafficSimulator
from beaconwatch.simulate.goflow2 import pair_key
from beaconwatch.simulate.model import SimFlow

if TYPE_CHECKING:
    from tests.integration.conftest import KafkaTestKit

pytestmark = pytest.mark.integration

FORMATS = ("goflow2-json", "goflow2-pb", "pmacct-json", "ecs-json", "zeek-json")
# ~2,100 flows per site over 40 min; beacons every 20-60 s so each has ~40-120 check-ins.
SPEC = SimulationSpec(
    seed=1, hosts=40, beacons=3, duration_s=2_400, min_period_s=20, max_period_s=60
)
REJECT_REASONS = (
    "invalid_utf8", "invalid_json", "invalid_protobuf", "not_an_object", "missing_field",
    "invalid_field", "invalid_address", "oversized", "unknown_format", "too_late",
    "too_far_future", "tombstone",
)  # fmt: skip


def site_ip(ip: str, site: int) -> str:
    """The simulator's internal addresses moved into site ``site``'s own prefix."""
    a, b, c, d = ip.split(".")
    if (a, b) == ("10", "0"):
        return f"10.{site + 1}.{c}.{d}"
    if (a, b) == ("192", "168"):
        return f"172.{16 + site}.{c}.{d}"
    return ip


def site_flows(flows: list[SimFlow], site: int) -> list[SimFlow]:
    return [
        f._replace(src_ip=site_ip(f.src_ip, site), dst_ip=site_ip(f.dst_ip, site)) for f in flows
    ]


def comparable(alert: Alert) -> tuple[object, ...]:
    """Everything about an alert but its site's addresses (and the ids derived from them) and
    the prevalence figures: those count the sources of the destination across all topics (the
    sites share their C2 servers), so they depend on which topics were read before. Five
    sources of ~200 stay far below `prevalence.low_share`: no score is down-ranked. Nor
    whether the direction was inferred: Zeek names each connection's originator, the flow
    formats leave it to the ports."""
    stats = dataclasses.replace(
        alert.stats, prevalence=0.0, prevalence_sources=0, direction_inferred=False
    )
    return (
        alert.dst_ip, alert.dst_port, alert.proto, alert.lifecycle, alert.window_start_ms,
        alert.window_end_ms, alert.first_seen_ms, alert.detected_ms, alert.severity,
        dataclasses.astuple(stats),
    )  # fmt: skip


async def test_one_service_five_formats_same_alerts(kit: KafkaTestKit) -> None:
    sim = TrafficSimulator(SPEC)
    flows = [flow for _, chunk in sim.flow_chunks() for flow in chunk]
    topics = {name: f"{kit.names.input}-{name}" for name in FORMATS}
    await create_topics(kit.broker.bootstrap_servers, dict.fromkeys(topics.values(), 1))
    planted: dict[str, set[tuple[str, str, int]]] = {}
    for site, (name, topic) in enumerate(topics.items()):
        local = site_flows(flows, site)
        values = encoder(name)(local)
        await kit.produce(topic, [(pair_key(f), v) for f, v in zip(local, values, strict=True)])
        planted[name] = {
            (site_ip(b.src_ip, site), b.dst_ip, b.dst_port) for b in sim.planted
        }  # fmt: skip
    external = sum(1 for f in flows if not f.dst_ip.startswith(("10.", "192.168.")))

    config = kit.config(
        input_topics=list(topics.values()),
        topic_formats={topic: name for name, topic in topics.items()},
    )
    async with kit.running(config) as run:
        registry = run.service.registry
        assigned = "beaconwatch_repartition_partitions_assigned"
        assert kit.metric(registry, assigned) == len(FORMATS)
        total = len(FORMATS) * len(flows)
        await kit.wait_until(lambda: run.consumed() == total, timeout_s=30, what="all consumed")
        await kit.drained(run)
        assert kit.metric(registry, "beaconwatch_flows_accepted_total") == len(FORMATS) * external
        for reason in REJECT_REASONS:
            assert kit.metric(registry, "beaconwatch_records_rejected_total", reason=reason) == 0
        assert kit.metric(registry, "beaconwatch_dead_letter_records_total") == 0

    site_of = {ip: name for name in FORMATS for ip, _, _ in planted[name]}
    assert [a for a in run.alerts if a.src_ip not in site_of] == []  # only planted beacons
    by_site: dict[str, list[Alert]] = {name: [] for name in FORMATS}
    for alert in run.alerts:
        by_site[site_of[alert.src_ip]].append(alert)
    for name in FORMATS:
        alerted = {(a.src_ip, a.dst_ip, a.dst_port) for a in by_site[name]}
        assert alerted == planted[name], name
    # Same alerts (lifecycle, windows, severity, score, period and every other statistic)
    # from every format: the decoded flows are identical, so the kernels compute bit-identical
    # figures (the Alert rounds them: score to 1e-4, period to 1 ms).
    assert all(a.stats.score == a.stats.raw_score for a in run.alerts)  # no down-ranking
    for name in FORMATS:
        inferred = {a.stats.direction_inferred for a in by_site[name]}
        assert inferred == {not name.startswith("zeek")}, name
    reference = sorted(map(comparable, by_site[FORMATS[0]]))
    for name in FORMATS[1:]:
        assert sorted(map(comparable, by_site[name])) == reference, name

    alert_records = await kit.read_topic(kit.names.alerts, expected=len(run.alerts))
    assert len(alert_records) == len(run.alerts)
    docs = [orjson.loads(r.value) for r in alert_records]
    assert {d["event"]["id"] for d in docs} == {a.event_id for a in run.alerts}
    assert await kit.read_topic(kit.names.dead_letter, expected=0) == []
