"""Real exporter -> real collector -> Apache Kafka -> beaconwatch, on six paths:

    pcap (scapy) -> softflowd -> NetFlow v9 | IPFIX -> goflow2 -format=bin | json -> Kafka
                                                   -> nfacctd (pmacct JSON)       -> Kafka
    each topic -> a beaconwatch service -> alerts topic

The pcap holds ~7 minutes of planted beacons (5-20 s, three jitter shapes, missed check-ins,
one over IPv6) and benign traffic (browsing bursts, DNS, long sessions, one-way UDP; browsing
and DNS over IPv6 too). On every path every
planted beacon must be alerted with its period within 5 %, nothing else may be alerted, and
no record may be rejected. Tools: tests/harness/install-e2e-tools.sh (make e2e-tools)."""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from beaconwatch.scoring.shape_names import shape_of
from beaconwatch.scoring.sleep_range import described_range
from tests.e2e.collectors import PATHS, FlowPath, publish_path
from tests.e2e.pcap_traffic import Traffic, write_pcap
from tests.harness.apache_kafka import ApacheKafkaBroker
from tests.integration.conftest import KafkaTestKit, Names

pytestmark = pytest.mark.integration

SEED = int(os.environ.get("E2E_SEED", "1"))  # the pcap's seed; others: E2E_SEED=2 make test-e2e
PERIOD_TOLERANCE = 0.05


@dataclass(frozen=True)
class CollectedTopic:
    topic: str
    records: int  # records softflowd exported = flow records the collector must publish


@pytest.fixture(scope="module")
def apache_kafka() -> Iterator[ApacheKafkaBroker]:
    with ApacheKafkaBroker() as broker:
        yield broker


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def traffic(workdir: Path) -> Traffic:
    return write_pcap(workdir / "traffic.pcap", seed=SEED)


@pytest.fixture(scope="module")
def collected(
    apache_kafka: ApacheKafkaBroker, traffic: Traffic, workdir: Path
) -> dict[str, CollectedTopic]:
    """Every path's topic, filled by the real exporter and collector (run one after another:
    softflowd exits once it has exported the whole pcap)."""
    out: dict[str, CollectedTopic] = {}
    for path in PATHS:
        topic = f"flows-{path.name}-{uuid.uuid4().hex[:6]}"
        exported, published = publish_path(
            path, workdir / "traffic.pcap", apache_kafka, topic, workdir
        )
        # Each flow once: exactly what softflowd exported, no loss, no repeats.
        assert published == exported, path.name
        out[path.name] = CollectedTopic(topic, exported)
    return out


@pytest.mark.parametrize("path", PATHS, ids=[p.name for p in PATHS])
async def test_planted_beacons_alerted_with_their_period_and_nothing_else(
    path: FlowPath,
    apache_kafka: ApacheKafkaBroker,
    collected: dict[str, CollectedTopic],
    traffic: Traffic,
) -> None:
    source = collected[path.name]
    assert source.records > 2 * traffic.connections * 0.9  # both directions of (nearly) all
    tag = uuid.uuid4().hex[:8]
    kit = KafkaTestKit(
        apache_kafka, Names(source.topic, f"alerts-{tag}", f"dlq-{tag}", f"group-{tag}")
    )
    config = kit.config(topic_formats={source.topic: path.input_format})

    async with kit.running(config) as run:
        await kit.wait_until(
            lambda: run.consumed() == source.records, timeout_s=60, what="all records consumed"
        )
        await kit.drained(run)
        registry = run.service.registry
        assert kit.metric(registry, "beaconwatch_dead_letter_records_total") == 0
        merged = kit.metric(registry, "beaconwatch_flows_merged_total", kind="duplicate")
        assert merged > 0  # the reply directions are recognised as the same connections

    planted = {(b.src, b.dst, b.dport): b for b in traffic.beacons}
    docs = [orjson.loads(r.value) for r in await kit.read_topic(kit.names.alerts, expected=1)]
    latest: dict[tuple[str, str, int], dict[str, object]] = {}
    for doc in sorted(docs, key=lambda d: d["@timestamp"]):
        latest[(doc["source"]["ip"], doc["destination"]["ip"], doc["destination"]["port"])] = doc
    assert set(latest) == set(planted), sorted(latest)
    for pair, doc in latest.items():
        beacon = doc["beacon"]
        assert isinstance(beacon, dict)
        planted_beacon = planted[pair]
        sleep_s = planted_beacon.period_s
        # The period: the mean interval of the planted check-ins in the alert's window, what
        # the beacon really did there (a small window's mean strays from S(1 - j/2) & co.).
        start, end = (iso_epoch(doc["event"][k]) for k in ("start", "end"))  # type: ignore[index]
        want_mean = planted_beacon.mean_single_interval(start - 1.0, end + 1.0)
        assert abs(beacon["mean_interval_s"] - want_mean) <= PERIOD_TOLERANCE * want_mean, beacon
        # The operator's sleep lies in the sleep range the alert describes ("every 10 s,
        # -20 %" = [8, 10]), give or take 5 %. Not the anchor alone: intervals cannot tell the
        # jitter shapes apart, so "8 s, +25 %" is the same beacon (docs/collectors.md).
        shape = int(shape_of(beacon["jitter_shape"]))
        low, high = described_range(beacon["period_s"], beacon["jitter_ratio"], shape)
        slack = PERIOD_TOLERANCE * sleep_s
        assert low - slack <= sleep_s <= high + slack, (planted_beacon, beacon)


def iso_epoch(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
