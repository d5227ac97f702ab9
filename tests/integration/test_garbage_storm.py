"""A storm of bad records on the real broker: half of a topic is garbage, nothing is lost.

Good goflow2 records (background traffic and a planted beacon) interleaved one for one with
garbage (random bytes, truncated records, wrong types and ranges, invalid UTF-8 or a malformed
length prefix, another format's records, oversized records): every good flow is processed and
the beacon alerted; every bad record is on the dead-letter topic with the Kafka-Connect-style
headers and counted by reason; good + rejected == produced, and all of it is committed.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

import pytest

from beaconwatch.simulate.encoders import encoder
from beaconwatch.simulate.garbage import GARBAGE_FORMATS, garbage_records
from beaconwatch.simulate.generator import RESOLVER_IP, SimulationSpec, TrafficSimulator
from beaconwatch.simulate.goflow2 import pair_key
from beaconwatch.sinks.dead_letter import REJECTION_CLASS
from tests.unit.test_simulate_encoders import EXPECTED_REASONS

if TYPE_CHECKING:
    from tests.integration.conftest import KafkaTestKit

pytestmark = pytest.mark.integration

# ~1,000 flows in 30 min; two beacons every 20-60 s (30-90 check-ins each).
SPEC = SimulationSpec(
    seed=2, hosts=20, beacons=2, duration_s=1_800, min_period_s=20, max_period_s=60
)
Record = tuple[bytes | None, bytes | None]


@pytest.mark.parametrize("fmt", GARBAGE_FORMATS)
async def test_half_garbage_loses_nothing(kit: KafkaTestKit, fmt: str) -> None:
    names = kit.names
    await kit.make_input_topic(1)
    sim = TrafficSimulator(SPEC)
    flows = [flow for _, chunk in sim.flow_chunks() for flow in chunk]
    good = encoder(fmt)(flows)
    garbage = garbage_records(fmt, good, len(good), seed=7)
    records: list[Record] = []
    for k, (flow, value) in enumerate(zip(flows, good, strict=True)):
        records.append((pair_key(flow), value))
        records.append((f"garbage-{k}".encode(), garbage[k][1]))
    await kit.produce(names.input, records)

    async with kit.running(kit.config(input_format=fmt)) as run:
        registry = run.service.registry
        await kit.wait_until(lambda: run.consumed() == len(records), what="all consumed")
        await kit.drained(run)

        def by_label(name: str) -> dict[str, int]:
            """Sample value per ``reason`` label of counter ``name`` (zeros left out)."""
            return {
                sample.labels["reason"]: int(sample.value)
                for family in registry.collect()
                for sample in family.samples
                if sample.name == name and sample.value
            }

        # Every good flow processed: accepted, or out of scope (internal DNS).
        accepted = int(kit.metric(registry, "beaconwatch_flows_accepted_total"))
        ignored = by_label("beaconwatch_flows_ignored_total")
        assert accepted + sum(ignored.values()) == len(good)
        assert sum(ignored.values()) == sum(1 for f in flows if f.dst_ip == RESOLVER_IP)
        rejected = by_label("beaconwatch_records_rejected_total")
        assert sum(rejected.values()) == len(garbage)
        assert kit.metric(registry, "beaconwatch_dead_letter_records_total") == len(garbage)

    planted = {(b.src_ip, b.dst_ip, b.dst_port) for b in sim.planted}
    assert {(a.src_ip, a.dst_ip, a.dst_port) for a in run.alerts} == planted

    dead = await kit.read_topic(names.dead_letter, expected=len(garbage))
    assert len(dead) == len(garbage)
    by_reason: Counter[str] = Counter()
    for k, rec in enumerate(dead):
        kind, value = garbage[k]
        assert (rec.key, rec.value) == (f"garbage-{k}".encode(), value)  # unchanged, in order
        headers = dict(rec.headers)
        assert headers["__connect.errors.topic"] == names.input.encode()
        assert headers["__connect.errors.partition"] == b"0"
        assert headers["__connect.errors.offset"] == str(2 * k + 1).encode()
        assert headers["__connect.errors.exception.class.name"] == REJECTION_CLASS.encode()
        assert headers["__connect.errors.exception.message"]
        reason = headers["reason"].decode()
        assert reason in EXPECTED_REASONS[fmt][kind], (kind, reason)
        by_reason[reason] += 1
    assert by_reason == rejected
    # Nothing lost: good + rejected == produced, and all of it committed.
    assert await kit.committed_offsets() == {0: len(records)}
