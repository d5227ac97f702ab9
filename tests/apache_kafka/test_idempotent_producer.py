"""The service's producer is idempotent when configured so: Apache Kafka stores its alerts and
dead letters as batches with a producer id and gap-free sequence numbers, which is what lets the
broker drop a retried duplicate. Without the setting, batches carry no producer id."""

from __future__ import annotations

import orjson
import pytest

from tests.harness.apache_kafka import ApacheKafkaBroker
from tests.integration.conftest import KafkaTestKit
from tests.integration.test_service import BEACONS, generate_flows

pytestmark = pytest.mark.integration

NO_PRODUCER_ID = "-1"


def assert_idempotent_batches(batches: list[dict[str, str]]) -> None:
    assert batches, "nothing written"
    producer_ids = {b["producerId"] for b in batches}
    assert len(producer_ids) == 1 and NO_PRODUCER_ID not in producer_ids, producer_ids
    expected_sequence = 0
    for batch in batches:
        assert int(batch["baseSequence"]) == expected_sequence, batches
        expected_sequence = int(batch["lastSequence"]) + 1
        assert batch["isTransactional"] == "false"


@pytest.mark.parametrize("idempotent", [True, False], ids=["idempotent", "at-least-once"])
async def test_outputs_are_written_by_an_idempotent_producer_when_configured(
    kit: KafkaTestKit, apache_kafka: ApacheKafkaBroker, idempotent: bool
) -> None:
    await kit.make_input_topic(1)
    records = generate_flows(seed=11)
    bad = [(b"k", b"{not json"), (None, b"\x00\x01binary")]
    await kit.produce(kit.names.input, records + bad)

    async with kit.running(kit.config(idempotent_producer=idempotent)) as run:
        await kit.wait_until(lambda: run.consumed() == len(records + bad), what="all consumed")
    alerts = await kit.read_topic(kit.names.alerts, expected=len(BEACONS))
    alerted = {
        tuple(orjson.loads(r.value)[k]["ip"] for k in ("source", "destination")) for r in alerts
    }
    assert alerted == {(src, dst) for src, dst, _ in BEACONS}
    assert len(await kit.read_topic(kit.names.dead_letter, expected=len(bad))) == len(bad)

    for topic in (kit.names.alerts, kit.names.dead_letter):
        # Sequence numbers count per partition: check each partition's log on its own.
        logs = [apache_kafka.record_batches(topic, p) for p in await kit.end_offsets(topic)]
        written = [batches for batches in logs if batches]
        assert written
        for batches in written:
            if idempotent:
                assert_idempotent_batches(batches)
            else:
                assert all(b["producerId"] == NO_PRODUCER_ID for b in batches), batches
