"""Flow encoders round-trip through the real decoders: every format gives back the flows.

Simulated times are whole milliseconds; every format carries at least that (goflow2 ns,
pmacct and Zeek microseconds, ECS milliseconds), so start/end come back exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import orjson
import pytest

from beaconwatch.decode.registry import get_decoder
from beaconwatch.decode.scan.goflow2_pb_record import read_varint
from beaconwatch.domain.addresses import ip_to_halves
from beaconwatch.domain.flows import FlowBatch
from beaconwatch.simulate import encoders
from beaconwatch.simulate.encoders import encoder
from beaconwatch.simulate.garbage import GARBAGE_FORMATS, GARBAGE_KINDS, garbage_records
from beaconwatch.simulate.generator import SimulationSpec, TrafficSimulator
from beaconwatch.simulate.model import SimFlow

FIXTURES = Path(__file__).parent.parent / "fixtures"
T0_MS = 1_767_324_720_123

# Beyond what the simulator makes: IPv6, ICMP/ICMPv6 (type/code as ports or none), GRE,
# zero durations, 64-bit byte counts, port 0, second and millisecond boundaries.
VARIED = [
    SimFlow(T0_MS, T0_MS + 1_504, "10.1.2.30", "203.0.113.7", 51514, 443, "TCP", 989, 9),
    SimFlow(T0_MS + 1, T0_MS + 1, "10.1.2.30", "198.51.100.53", 55011, 53, "UDP", 61, 1),
    SimFlow(T0_MS + 877, T0_MS + 2_000, "192.168.7.1", "192.0.2.9", 0, 0, "ICMP", 84, 1),
    SimFlow(T0_MS + 999, T0_MS + 60_001, "fd00::1:2", "2001:db8::77", 40000, 8443, "TCP",
            2**40 + 5, 2**20),
    SimFlow(T0_MS + 1_000, T0_MS + 1_030, "fd00::1:2", "2001:db8::53", 0, 0, "IPv6-ICMP", 104, 1),
    SimFlow(T0_MS + 2_500, T0_MS + 2_500, "10.9.9.9", "198.51.100.1", 0, 0, "GRE", 1_400, 2),
    SimFlow(1_700_000_000_000, 1_700_000_000_000, "10.0.0.1", "203.0.113.1", 65535, 65535,
            "UDP", 0, 1),
]  # fmt: skip


def simulated_flows() -> list[SimFlow]:
    sim = TrafficSimulator(SimulationSpec(seed=5, hosts=30, beacons=3, duration_s=900))
    return [flow for _, chunk in sim.flow_chunks() for flow in chunk]


def expected_columns(flows: Sequence[SimFlow]) -> dict[str, np.ndarray]:
    src = [ip_to_halves(f.src_ip) for f in flows]
    dst = [ip_to_halves(f.dst_ip) for f in flows]
    return {
        "start_ms": np.array([f.start_ms for f in flows], dtype=np.int64),
        "end_ms": np.array([f.end_ms for f in flows], dtype=np.int64),
        "src_hi": np.array([h for h, _ in src], dtype=np.uint64),
        "src_lo": np.array([lo for _, lo in src], dtype=np.uint64),
        "dst_hi": np.array([h for h, _ in dst], dtype=np.uint64),
        "dst_lo": np.array([lo for _, lo in dst], dtype=np.uint64),
        "src_port": np.array([f.src_port for f in flows], dtype=np.uint16),
        "dst_port": np.array([f.dst_port for f in flows], dtype=np.uint16),
        "proto": np.array([encoders.proto_number(f) for f in flows], dtype=np.uint8),
        "bytes": np.array([f.bytes for f in flows], dtype=np.uint64),
        "packets": np.array([f.packets for f in flows], dtype=np.uint64),
    }


def assert_same_flows(decoded: FlowBatch, flows: Sequence[SimFlow]) -> None:
    assert len(decoded) == len(flows)
    for name, want in expected_columns(flows).items():
        got = getattr(decoded, name)
        assert got.dtype == want.dtype, name
        mismatch = np.flatnonzero(got != want)
        assert mismatch.size == 0, (name, [flows[k] for k in mismatch[:3]], got[mismatch[:3]])


JSON_AND_PB = ("goflow2-json", "goflow2-pb", "pmacct-json", "ecs-json", "zeek-json")


@pytest.mark.parametrize("name", JSON_AND_PB)
def test_varied_flows_round_trip(name: str) -> None:
    records = encoder(name)(VARIED)
    result = get_decoder(name).decode(records)
    assert result.rejections == []
    assert_same_flows(result.flows, VARIED)


def test_zeek_tsv_round_trip_and_refuses_what_its_columns_cannot_say() -> None:
    flows = [f for f in VARIED if f.proto != "GRE"]
    result = get_decoder("zeek-tsv").decode(encoders.zeek_tsv(flows))
    assert result.rejections == []
    assert_same_flows(result.flows, flows)
    with pytest.raises(ValueError, match="ip_proto"):
        encoders.zeek_tsv(VARIED)


def test_goflow2_json_is_what_the_simulator_writes() -> None:
    spec = SimulationSpec(seed=9, hosts=10, beacons=1, duration_s=300)
    flows = [f for _, chunk in TrafficSimulator(spec).flow_chunks() for f in chunk]
    values = [r.value for r in TrafficSimulator(spec).records()]
    assert encoders.goflow2_json(flows) == values


def test_goflow2_pb_is_byte_identical_to_real_goflow2_output() -> None:
    """goflow2 v2.2.6 wrote the same packets as JSON and as binary (fixtures): our binary
    encoding of its JSON records is its binary output, byte for byte."""
    data = (FIXTURES / "goflow2" / "flows.bin").read_bytes()
    lines = (FIXTURES / "goflow2" / "flows-from-netflow.jsonl").read_bytes().splitlines()
    encoder = encoders.Goflow2PbEncoder()
    pos = 0
    for line in lines:
        prefix = read_varint(data, pos)
        assert prefix is not None
        length, body_at = prefix
        real = data[pos : body_at + length]
        pos = body_at + length
        record = orjson.loads(line)
        # The only difference between the two goflow2 runs is the receive time.
        body = encoder.message_class.FromString(data[body_at:pos])
        record["time_received_ns"] = body.time_received_ns
        assert encoder.from_json_record(record) == real
    assert pos == len(data)


def test_pmacct_multi_values_bundle_objects() -> None:
    flows = VARIED * 2
    records = encoders.pmacct_json(flows, objects_per_record=4)
    assert len(records) == 4
    assert all(r.endswith(b"\n") for r in records)
    assert [r.count(b"\n") for r in records] == [4, 4, 4, 2]
    result = get_decoder("pmacct-json").decode(records)
    assert result.rejections == []
    assert list(result.flows.record_index) == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 2
    assert_same_flows(result.flows, flows)
    with pytest.raises(ValueError):
        encoders.pmacct_json(flows, objects_per_record=0)


def test_shapes_follow_the_collector_fixtures() -> None:
    """Same keys (and key order for pmacct) as the hand-checked collector fixtures."""
    flow = VARIED[1]  # IPv4 UDP, like the first fixture record of each format

    def paths(obj: object, prefix: str = "") -> set[str]:
        if not isinstance(obj, dict):
            return {prefix}
        return set().union(*(paths(v, f"{prefix}.{k}" if prefix else k) for k, v in obj.items()))

    ecs_fixture = orjson.loads((FIXTURES / "ecs" / "same_flows.jsonl").read_bytes().split()[0])
    assert paths(encoders.ecs_document(flow, sequence_num=1)) == paths(ecs_fixture)
    pm_line = (FIXTURES / "pmacct" / "same_flows.jsonl").read_bytes().splitlines()[0]
    pm_record = encoders.pmacct_json([flow])[0]
    assert list(orjson.loads(pm_record)) == list(orjson.loads(pm_line))
    assert pm_record.startswith(b'{"event_type": "purge", "peer_ip_src": ')  # jansson spacing
    zeek_fixture = orjson.loads((FIXTURES / "zeek" / "conn.json").read_bytes().splitlines()[1])
    assert list(encoders.zeek_conn(flow, sequence_num=1)) == list(zeek_fixture)


def test_time_text_at_each_formats_precision() -> None:
    flow = SimFlow(1_767_324_720_050, 1_767_324_721_000, "10.0.0.1", "192.0.2.1", 1, 2, "TCP",
                   1, 1)  # fmt: skip
    pm = orjson.loads(encoders.pmacct_json([flow])[0])
    assert (pm["timestamp_start"], pm["timestamp_end"]) == (
        "2026-01-02 03:32:00.050000", "2026-01-02 03:32:01.000000",
    )  # fmt: skip
    netflow = encoders.ecs_document(flow, sequence_num=1)["netflow"]
    # Go's RFC 3339 form: trailing zeros of the fraction trimmed.
    assert netflow["flow_start_milliseconds"] == "2026-01-02T03:32:00.05Z"
    assert netflow["flow_end_milliseconds"] == "2026-01-02T03:32:01Z"
    conn = encoders.zeek_conn(flow, sequence_num=1)
    assert (conn["ts"], conn["duration"]) == (1_767_324_720.05, 0.95)


def test_unknown_names_are_refused() -> None:
    with pytest.raises(ValueError, match="no encoder"):
        encoder("netflow-v5")
    with pytest.raises(ValueError, match="unknown protocol"):
        encoders.ecs_json([VARIED[0]._replace(proto="NOPE")])


# What the decoders must answer to each kind of garbage (`garbage_records`).
EXPECTED_REASONS: dict[str, dict[str, set[str]]] = {
    "goflow2-json": {
        "random_bytes": {"invalid_utf8", "invalid_json"},
        "truncated": {"invalid_json"},
        "wrong_type": {"invalid_field", "invalid_address"},
        "invalid_utf8": {"invalid_utf8"},
        "wrong_format": {"invalid_utf8", "invalid_json"},  # protobuf bytes
        "oversized": {"oversized"},
    },
    "goflow2-pb": {
        "random_bytes": {"invalid_protobuf"},
        "truncated": {"invalid_protobuf"},
        "wrong_type": {"invalid_field", "invalid_address"},
        "invalid_utf8": {"invalid_protobuf"},  # a malformed varint prefix
        "wrong_format": {"invalid_protobuf"},  # JSON text
        "oversized": {"oversized"},
    },
}


@pytest.mark.parametrize("name", GARBAGE_FORMATS)
def test_garbage_is_rejected_for_the_expected_reasons(name: str) -> None:
    good = encoder(name)(VARIED[:2] + simulated_flows()[:100])
    garbage = garbage_records(name, good, 240, seed=3)
    kinds = [kind for kind, _ in garbage]
    assert {kinds.count(kind) for kind in GARBAGE_KINDS} == {40}
    result = get_decoder(name).decode([value for _, value in garbage])
    assert len(result.flows) == 0
    assert [r.record_index for r in result.rejections] == list(range(len(garbage)))
    for rejection in result.rejections:
        kind, value = garbage[rejection.record_index]
        assert rejection.reason in EXPECTED_REASONS[name][kind], (kind, value[:80], rejection)
    assert len({r.reason for r in result.rejections}) >= 4
    oversized = [v for k, v in garbage if k == "oversized"]
    assert len(oversized[0]) > 64 * 1024 and len({id(v) for v in oversized}) == 1
    with pytest.raises(ValueError, match="not implemented"):
        garbage_records("zeek-json", good, 1)
