"""The service with alerting.format = "ocsf" on a real broker: the planted beacons come back
from the alerts topic as OCSF 1.8.0 Detection Findings that validate against the schema, keyed
by pair like the ECS alerts."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
import pytest

from beaconwatch.alerting.ocsf import OCSF_VERSION
from beaconwatch.config import with_overrides
from tests.integration.test_service import BEACONS, generate_flows
from tests.unit.ocsf_schema import ocsf_errors

if TYPE_CHECKING:
    from tests.integration.conftest import KafkaTestKit

pytestmark = pytest.mark.integration


async def test_planted_beacons_come_back_as_valid_ocsf_findings(kit: KafkaTestKit) -> None:
    names = kit.names
    await kit.make_input_topic(1)
    records = generate_flows(seed=5)
    await kit.produce(names.input, records)

    config = with_overrides(kit.config(), alerting={"format": "ocsf"})
    async with kit.running(config) as run:
        await kit.wait_until(lambda: run.consumed() == len(records), what="all records consumed")
        await kit.drained(run)

    planted = set(BEACONS)
    alert_records = await kit.read_topic(names.alerts, expected=len(planted))
    docs = [orjson.loads(r.value) for r in alert_records]
    for doc in docs:
        assert ocsf_errors(doc, OCSF_VERSION) == []
        assert (doc["class_uid"], doc["activity_id"], doc["type_uid"]) == (2004, 1, 200401)
    found = {
        (e["src_endpoint"]["ip"], e["dst_endpoint"]["ip"], e["dst_endpoint"]["port"])
        for e in (d["evidences"][0] for d in docs)
    }
    assert found == planted
    # Same record key as ECS alerts: the pair.
    for rec, doc in zip(alert_records, docs, strict=True):
        e = doc["evidences"][0]
        pair = f"{e['src_endpoint']['ip']}>{e['dst_endpoint']['ip']}:{e['dst_endpoint']['port']}/6"
        assert rec.key == pair.encode()
        assert e["connection_info"]["direction_id"] == 2  # an external destination: outbound
    # Each finding is the alert the detector raised: its ids, partition and figures.
    by_event = {a.event_id: a for a in run.alerts}
    assert len(by_event) == len(docs)
    for doc in docs:
        alert = by_event[doc["metadata"]["uid"]]
        assert doc["finding_info"]["uid"] == alert.series_id
        assert alert.partition is not None
        assert doc["unmapped"]["kafka_partition"] == alert.partition
        assert doc["unmapped"]["beacon"]["period_s"] == alert.stats.period_s
        assert abs(alert.stats.period_s - 60) < 6
