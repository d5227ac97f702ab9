"""The repartition stage's core: each internal host's flows go to one partition, in time
order, in records of bounded size; rejections and scope are counted."""

from __future__ import annotations

import numpy as np

from beaconwatch.config import load_config, with_overrides
from beaconwatch.core.host_owners import host_hash
from beaconwatch.core.repartition import Repartitioner, host_partitions
from beaconwatch.decode.flow_columns import BYTES_PER_FLOW, HEADER_BYTES, FlowColumnsDecoder
from beaconwatch.domain.flows import FlowBatch
from beaconwatch.simulate.encoders import encoder
from beaconwatch.simulate.generator import SimulationSpec, TrafficSimulator
from tests.unit.flowgen import T0_MS, make_flows


def test_host_partitions_are_fixed_values() -> None:
    # Where a host's state lives must never change between versions or machines: a change
    # here moves every host's state to another partition (golden values, not recomputed).
    hi = np.array([0, 0, 0x2001_0DB8_0000_0000], dtype=np.uint64)
    lo = np.array([0xFFFF_0A00_0001, 0xFFFF_0A00_0002, 1], dtype=np.uint64)
    assert [hex(int(h)) for h in host_hash(hi, lo)] == [
        "0xd72cb1c16a317a6", "0x8928439404fb06be", "0xe458acaffe2d4d06"
    ]  # fmt: skip
    assert host_partitions(hi, lo, 16).tolist() == [6, 14, 6]
    assert host_partitions(hi, lo, 7).tolist() == [2, 4, 0]


def test_hosts_of_one_subnet_spread_evenly() -> None:
    lo = np.uint64(0xFFFF_0A00_0000) + np.arange(4096, dtype=np.uint64)
    counts = np.bincount(host_partitions(np.zeros(4096, np.uint64), lo, 16), minlength=16)
    assert counts.min() > 4096 / 16 * 0.7 and counts.max() < 4096 / 16 * 1.3


def test_every_host_goes_to_its_partition_in_time_order_in_bounded_records() -> None:
    config = load_config(env={})
    rng = np.random.default_rng(5)
    rows = [
        (T0_MS + int(t), f"10.0.{h // 200}.{h % 200 + 1}", "203.0.113.9", 443, 6, 100)
        for t, h in zip(rng.integers(0, 3_600_000, 5000), rng.integers(0, 400, 5000), strict=True)
    ]
    flows = make_flows(rows)
    max_bytes = HEADER_BYTES + 300 * BYTES_PER_FLOW
    rep = Repartitioner(config, partitions=8, max_record_bytes=max_bytes)
    # Two "input partitions", each in its own order: the output is time-ordered per partition.
    grouped = rep.group([flows.take(np.arange(0, 2500)), flows.take(np.arange(2500, 5000))])
    decoder = FlowColumnsDecoder()
    total = 0
    for partition, records in grouped.items():
        assert all(len(r) <= max_bytes for r in records)
        out = decoder.decode(records).flows
        total += len(out)
        assert set(host_partitions(out.src_hi, out.src_lo, 8).tolist()) == {partition}
        assert np.all(np.diff(out.start_ms) >= 0)
    assert total == len(flows)


def test_records_are_decoded_scoped_and_oriented_with_rejections_counted() -> None:
    config = with_overrides(load_config(env={}), kafka={"input_format": "goflow2-json"})
    sim = TrafficSimulator(SimulationSpec(seed=3, hosts=20, beacons=2, duration_s=600))
    flows = [f for _, chunk in sim.flow_chunks() for f in chunk]
    records: list[bytes | None] = list(encoder("goflow2-json")(flows))
    records[3] = b"{not json"
    records.insert(7, None)
    rep = Repartitioner(config, partitions=4, max_record_bytes=1 << 20)
    scoped = rep.scope_records(records, "flows")
    assert [(r.record_index, r.reason) for r in scoped.rejections] == [
        (3, "invalid_json"), (7, "tombstone")
    ]  # fmt: skip
    assert rep.stats.rejected_by_reason == {"invalid_json": 1, "tombstone": 1}
    ignored = sum(rep.stats.ignored_by_reason.values())
    assert len(scoped.flows) + ignored == len(flows) - 1
    # Oriented: every source is internal.
    internal = rep.scope.internal.contains(scoped.flows.src_hi, scoped.flows.src_lo)
    assert internal.all()


def test_empty_poll_writes_nothing() -> None:
    rep = Repartitioner(load_config(env={}), partitions=4, max_record_bytes=1 << 20)
    assert rep.group([FlowBatch.empty(0)]) == {}
