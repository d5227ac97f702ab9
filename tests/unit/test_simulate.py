"""The traffic simulator: determinism, jitter models, record shape and ground truth."""

from __future__ import annotations

import ipaddress
import itertools
import statistics
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import orjson
import pytest

from beaconwatch.scoring.periodicity import Shape
from beaconwatch.simulate import (
    PlantedBeacon,
    SimulationSpec,
    TrafficSimulator,
    read_truth,
    write_truth,
)
from beaconwatch.simulate.model import SimFlow
from beaconwatch.simulate.pacing import EventPacer
from beaconwatch.simulate.profiles import BeaconProfile

START_MS = 1_700_000_000_000
SMALL = SimulationSpec(seed=7, start_ms=START_MS, duration_s=1_800.0, hosts=40, beacons=3)

GOFLOW2_FIELDS = {
    "type", "time_received_ns", "sequence_num", "sampling_rate", "sampler_address",
    "time_flow_start_ns", "time_flow_end_ns", "bytes", "packets", "src_addr", "dst_addr",
    "etype", "proto", "src_port", "dst_port", "in_if", "out_if", "src_mac", "dst_mac",
    "tcp_flags", "next_hop", "src_as", "dst_as", "src_net", "dst_net",
}  # fmt: skip


def _flows(spec: SimulationSpec) -> list[SimFlow]:
    return [f for _, chunk in TrafficSimulator(spec).flow_chunks() for f in chunk]


def test_same_seed_same_records_different_seed_different_records() -> None:
    a = list(TrafficSimulator(SMALL).records())
    b = list(TrafficSimulator(SMALL).records())
    c = list(TrafficSimulator(replace(SMALL, seed=8)).records())
    assert a == b
    assert len(a) > 1_000
    assert [r.value for r in a] != [r.value for r in c]


def test_flows_do_not_depend_on_chunk_size() -> None:
    # Each profile owns its generator: slicing time differently must not change any flow.
    coarse = _flows(replace(SMALL, chunk_s=300.0))
    fine = _flows(replace(SMALL, chunk_s=1.0))
    assert sorted(coarse) == sorted(fine)


def test_records_are_full_goflow2_json_keyed_by_pair_within_the_time_range() -> None:
    sim = TrafficSimulator(SMALL)
    records = list(sim.records())
    sequence = []
    for rec in records:
        doc = orjson.loads(rec.value)
        assert doc.keys() >= GOFLOW2_FIELDS
        assert doc["proto"] in ("TCP", "UDP")
        assert doc["etype"] == "IPv4"
        proto = {"TCP": 6, "UDP": 17}[doc["proto"]]
        assert rec.key == f"{doc['src_addr']}>{doc['dst_addr']}:{doc['dst_port']}/{proto}".encode()
        start_ns, end_ns = doc["time_flow_start_ns"], doc["time_flow_end_ns"]
        assert START_MS * 1_000_000 <= start_ns < (START_MS + 1_800_000) * 1_000_000
        assert end_ns >= start_ns
        assert doc["time_received_ns"] >= end_ns
        assert rec.start_ms * 1_000_000 == start_ns
        assert doc["bytes"] > 0 and doc["packets"] > 0
        sequence.append(doc["sequence_num"])
    assert sequence == list(range(1, len(records) + 1))


def test_output_is_nearly_sorted_by_start_with_bounded_disorder() -> None:
    starts = [f.start_ms for f in _flows(SMALL)]
    assert starts != sorted(starts)  # some out-of-order jitter exists...
    running_max = 0
    for s in starts:  # ...but never more than max_disorder_s
        running_max = max(running_max, s)
        assert running_max - s <= SMALL.max_disorder_s * 1000


def test_addresses_benign_private_and_c2_in_documentation_ranges() -> None:
    sim = TrafficSimulator(SimulationSpec(seed=3, start_ms=START_MS, hosts=300, beacons=4))
    assert len(sim.hosts) == 300 == len(set(sim.hosts))
    for host in sim.hosts:
        assert host.startswith(("10.0.", "192.168."))
    documentation = [ipaddress.ip_network(n) for n in ("203.0.113.0/24", "198.51.100.0/24")]
    for b in sim.planted:
        assert b.src_ip in sim.hosts
        assert any(ipaddress.ip_address(b.dst_ip) in net for net in documentation)
        assert 30 <= b.period_s <= 300
    for dst in sim.destinations:
        assert not any(ipaddress.ip_address(dst) in net for net in documentation)
        assert ipaddress.ip_address(dst).is_global
    assert {b.style for b in sim.planted} == {Shape.SUBTRACTIVE, Shape.ADDITIVE, Shape.SYMMETRIC}


def test_planted_pairs_carry_exactly_the_planted_beacon_traffic() -> None:
    spec = SimulationSpec(seed=11, start_ms=START_MS, duration_s=7_200.0, hosts=50, beacons=4)
    sim = TrafficSimulator(spec)
    by_pair: dict[tuple[str, str, int, str], list[SimFlow]] = defaultdict(list)
    for _, chunk in sim.flow_chunks():
        for f in chunk:
            by_pair[f.pair].append(f)
    for b in sim.planted:
        flows = sorted(by_pair[b.pair])
        lo, hi = b.interval_bounds_s()
        assert len(flows) >= int(7_200 / hi) - 1
        gaps = [(y.start_ms - x.start_ms) / 1000 for x, y in itertools.pairwise(flows)]
        assert min(gaps) >= lo - 0.002 and max(gaps) <= hi + 0.002
        sizes = [f.bytes for f in flows]
        assert statistics.pstdev(sizes) < 0.1 * statistics.mean(sizes)


@pytest.mark.parametrize(
    ("style", "lo", "hi"),
    [
        (Shape.SUBTRACTIVE, 70.0, 100.0),  # Cobalt Strike: [S(1-j), S]
        (Shape.ADDITIVE, 100.0, 130.0),  # Sliver: S + U[0, jS)
        (Shape.SYMMETRIC, 70.0, 130.0),  # S +/- jS
    ],
)
def test_sleep_follows_the_jitter_model(style: Shape, lo: float, hi: float) -> None:
    beacon = PlantedBeacon("10.0.0.9", "203.0.113.9", 443, "TCP", 100.0, 0.3, style, 500)
    assert beacon.interval_bounds_s() == pytest.approx((lo, hi))
    profile = BeaconProfile(seed=5, start_ms=START_MS, beacon=beacon)
    sleeps = [profile.sleep_s() for _ in range(20_000)]
    assert lo <= min(sleeps) and max(sleeps) <= hi
    # Uniform over the band: mean in the middle, every tenth of the band used about equally.
    assert statistics.fmean(sleeps) == pytest.approx((lo + hi) / 2, abs=0.5)
    deciles = [0] * 10
    for s in sleeps:
        deciles[min(9, int((s - lo) / (hi - lo) * 10))] += 1
    assert min(deciles) > 1_700 and max(deciles) < 2_300


def test_truth_round_trips_through_json(tmp_path: Path) -> None:
    path = tmp_path / "truth.json"
    sim = TrafficSimulator(SMALL)
    write_truth(path, sim.planted)
    assert read_truth(path) == sim.planted
    assert orjson.loads(path.read_bytes())[0]["style"] in {"subtractive", "additive", "symmetric"}


def test_no_beacons_means_no_traffic_to_documentation_ranges() -> None:
    spec = SimulationSpec(seed=2, start_ms=START_MS, duration_s=600.0, hosts=30, beacons=0)
    for f in _flows(spec):
        assert not f.dst_ip.startswith(("203.0.113.", "198.51.100."))


def test_endless_simulation_keeps_producing() -> None:
    sim = TrafficSimulator(SimulationSpec(seed=1, start_ms=START_MS, duration_s=None, hosts=20))
    chunks = sim.flow_chunks()
    ends = [next(chunks)[0] for _ in range(1_000)]
    assert ends[-1] == START_MS + 1_000 * 10_000


def test_invalid_spec_is_rejected() -> None:
    with pytest.raises(ValueError, match="beacons"):
        SimulationSpec(hosts=3, beacons=4)
    with pytest.raises(ValueError, match="duration_s"):
        SimulationSpec(duration_s=0)


def test_pacer_maps_event_time_to_wall_time() -> None:
    pacer = EventPacer(event0_ms=START_MS, wall0_s=100.0, acceleration=60.0)
    assert pacer.wall_due_s(START_MS + 60_000) == pytest.approx(101.0)
    assert pacer.delay_s(START_MS + 60_000, wall_now_s=100.25) == pytest.approx(0.75)
    assert pacer.delay_s(START_MS + 60_000, wall_now_s=200.0) == 0.0
    assert EventPacer(START_MS, 5.0, 0.0).delay_s(START_MS + 10**9, 5.0) == 0.0
