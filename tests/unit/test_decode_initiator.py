"""The initiator from TCP flags and IPFIX biflowDirection, in every decoder that carries them,
fast paths and reference paths alike, and what it does to an inbound scan's flows."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from beaconwatch.config import Config, NetworkConfig
from beaconwatch.core.pipeline import Pipeline
from beaconwatch.core.scope import FlowScope, IgnoreReason
from beaconwatch.decode.common.initiator import biflow_initiator, tcp_flags_initiator
from beaconwatch.decode.common.rows import FlowRow
from beaconwatch.decode.parsed import ecs_json, pmacct_json
from beaconwatch.decode.parsed.ecs_json import EcsJsonDecoder
from beaconwatch.decode.parsed.pmacct_json import PmacctJsonDecoder
from beaconwatch.decode.scan import goflow2_pb_record, goflow2_record
from beaconwatch.decode.scan.goflow2_json import Goflow2JsonDecoder
from beaconwatch.decode.scan.goflow2_pb import Goflow2PbDecoder, delimited
from beaconwatch.domain.flows import INITIATOR_DST, INITIATOR_SRC, INITIATOR_UNKNOWN, FlowBatch
from beaconwatch.domain.rejections import RejectReason

FIXTURES = Path(__file__).parents[1] / "fixtures"
SCANNER, INTERNAL = "203.0.113.9", "10.20.1.12"
SYN, SYN_ACK, ACK_PSH, SYN_FIN, RST = 0x02, 0x12, 0x18, 0x03, 0x04
# flags -> the initiator a TCP record with them names
CASES = [(SYN, INITIATOR_SRC), (SYN_FIN, INITIATOR_SRC), (SYN_ACK, INITIATOR_UNKNOWN),
         (ACK_PSH, INITIATOR_UNKNOWN), (0x1B, INITIATOR_UNKNOWN), (RST, INITIATOR_UNKNOWN),
         (0, INITIATOR_UNKNOWN), (0x102, INITIATOR_SRC)]  # fmt: skip

GOFLOW2_JSON = Goflow2JsonDecoder()
GOFLOW2_PB = Goflow2PbDecoder()
PMACCT = PmacctJsonDecoder()
ECS = EcsJsonDecoder()


def _first_json(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text().splitlines()[0]))


def goflow2_json(flags: int, proto: str = "TCP", **over: Any) -> bytes:
    """A real softflowd -> goflow2 record with the flags (and fields) changed."""
    obj = _first_json(FIXTURES / "softflowd" / "goflow2-ipfix.jsonl")
    obj.update(tcp_flags=flags, proto=proto, **over)
    return json.dumps(obj, separators=(",", ":")).encode()


def goflow2_pb(flags: int, proto: str = "TCP", **over: Any) -> bytes:
    obj = json.loads(goflow2_json(flags, proto, **over))
    message = GOFLOW2_PB.message_class(
        time_flow_start_ns=obj["time_flow_start_ns"], time_flow_end_ns=obj["time_flow_end_ns"],
        src_addr=bytes(map(int, obj["src_addr"].split("."))),
        dst_addr=bytes(map(int, obj["dst_addr"].split("."))),
        proto={"TCP": 6, "UDP": 17}[proto], src_port=obj["src_port"], dst_port=obj["dst_port"],
        bytes=obj["bytes"], packets=obj["packets"], tcp_flags=flags,
    )  # fmt: skip
    return delimited(message.SerializeToString())


def pmacct(flags: int | str, proto: str = "TCP", **over: Any) -> bytes:
    """A real softflowd -> nfacctd record (its flags are a decimal string)."""
    obj = _first_json(FIXTURES / "softflowd" / "pmacct-ipfix.jsonl")
    names = {"src_addr": "ip_src", "dst_addr": "ip_dst", "src_port": "port_src",
             "dst_port": "port_dst"}  # fmt: skip
    obj.update({names[key]: value for key, value in over.items()})
    obj.update(tcp_flags=str(flags) if type(flags) is int else flags, ip_proto=proto.lower())
    return json.dumps(obj).encode()


def ecs(flags: int, proto: str = "TCP", biflow: int | None = None, **over: Any) -> bytes:
    """A Filebeat NetFlow document (the fixture's shape) with tcp_control_bits set."""
    obj = _first_json(FIXTURES / "ecs" / "same_flows.jsonl")
    obj["network"]["iana_number"] = {"TCP": 6, "UDP": 17}[proto]
    obj["netflow"]["tcp_control_bits"] = flags
    if biflow is not None:
        obj["netflow"]["biflow_direction"] = biflow
    names = {"src_addr": ("source", "ip"), "dst_addr": ("destination", "ip"),
             "src_port": ("source", "port"), "dst_port": ("destination", "port")}  # fmt: skip
    for key, value in over.items():
        obj[names[key][0]][names[key][1]] = value
    return json.dumps(obj).encode()


Make = Callable[..., bytes]
Reference = Callable[[bytes], Any]
DECODERS: list[tuple[str, Make, Any, Reference]] = [
    ("goflow2-json", goflow2_json, GOFLOW2_JSON,
     lambda r: goflow2_record.decode_record(r, 1 << 16)),
    ("goflow2-pb", goflow2_pb, GOFLOW2_PB,
     lambda r: goflow2_pb_record.decode_record(r, 1 << 16, GOFLOW2_PB.message_class)),
    ("pmacct-json", pmacct, PMACCT, lambda r: pmacct_json.decode_record(r)[0]),  # type: ignore[index]
    ("ecs-json", ecs, ECS, ecs_json.decode_record),
]  # fmt: skip


@pytest.mark.parametrize(("name", "make", "decoder", "reference"), DECODERS)
@pytest.mark.parametrize(("flags", "expected"), CASES)
def test_tcp_flags_name_the_initiator_in_fast_and_reference_paths(
    name: str, make: Make, decoder: Any, reference: Reference, flags: int, expected: int
) -> None:
    record = make(flags)
    flows = decoder.decode([record]).flows
    assert flows.initiator.tolist() == [expected], name
    row = reference(record)
    assert isinstance(row, FlowRow) and row.initiator == expected, name
    # The same flags on UDP say nothing.
    assert decoder.decode([make(flags, "UDP")]).flows.initiator.tolist() == [INITIATOR_UNKNOWN]


def test_the_real_collector_fixtures_keep_their_flags_meaning() -> None:
    # softflowd exports completed connections: flags 27 (FIN|SYN|PSH|ACK) or 0 (UDP), so no
    # record of the capture names an initiator; goflow2's own fixture has a bare SYN (flags 2).
    for path, decoder in ((FIXTURES / "softflowd" / "goflow2-ipfix.jsonl", GOFLOW2_JSON),
                          (FIXTURES / "softflowd" / "pmacct-ipfix.jsonl", PMACCT)):  # fmt: skip
        flows = decoder.decode(path.read_bytes().splitlines()).flows
        assert len(flows) > 30 and not flows.initiator.any(), path
    lines = (FIXTURES / "goflow2" / "flows.jsonl").read_bytes().splitlines()
    flows = GOFLOW2_JSON.decode(lines).flows
    expected = [
        INITIATOR_SRC if obj["proto"] == "TCP" and obj["tcp_flags"] & 0x12 == 2 else 0
        for obj in map(json.loads, lines)
    ]
    assert flows.initiator.tolist() == expected and INITIATOR_SRC in expected


def test_biflow_direction_states_either_end_and_wins_over_flags() -> None:
    assert [biflow_initiator(d) for d in range(5)] == [0, INITIATOR_SRC, INITIATOR_DST, 0, 0]
    got = [ECS.decode([ecs(flags, biflow=d)]).flows.initiator[0] for flags, d in
           ((ACK_PSH, 1), (ACK_PSH, 2), (SYN, 2), (SYN, 0), (SYN, 3), (ACK_PSH, 0))]  # fmt: skip
    assert got == [INITIATOR_SRC, INITIATOR_DST, INITIATOR_DST, INITIATOR_SRC, INITIATOR_SRC, 0]


@pytest.mark.parametrize(
    ("make", "decoder", "bad"),
    [(pmacct, PMACCT, "0x12"), (pmacct, PMACCT, "-2"), (pmacct, PMACCT, 1 << 32),
     (goflow2_json, GOFLOW2_JSON, -1), (goflow2_json, GOFLOW2_JSON, "2"),
     (goflow2_json, GOFLOW2_JSON, 1 << 32), (ecs, ECS, -1), (ecs, ECS, 1.5)],
)  # fmt: skip
def test_bad_flags_are_rejected_like_any_bad_field(make: Make, decoder: Any, bad: Any) -> None:
    result = decoder.decode([make(bad)])
    assert len(result.flows) == 0
    assert [r.reason for r in result.rejections] == [RejectReason.INVALID_FIELD]
    assert "tcp_flags" in result.rejections[0].detail or "tcp_control_bits" in str(
        result.rejections[0].detail
    )


def test_the_rule_itself() -> None:
    assert tcp_flags_initiator(6, SYN) == INITIATOR_SRC
    assert tcp_flags_initiator(6, SYN_ACK) == INITIATOR_UNKNOWN
    assert tcp_flags_initiator(17, SYN) == INITIATOR_UNKNOWN
    assert tcp_flags_initiator(132, SYN) == INITIATOR_UNKNOWN


def _scan(make: Make, flags: int) -> list[bytes]:
    """A scanner's probes of 40 internal hosts on a non-service high port, from one source
    port: what a one-direction exporter sees of them (no replies)."""
    return [
        make(flags, src_addr=SCANNER, dst_addr=f"10.20.1.{h}", src_port=40_000, dst_port=50_050)
        for h in range(1, 41)
    ]


@pytest.mark.parametrize(("name", "make", "decoder", "reference"), DECODERS)
def test_inbound_syn_only_scan_under_one_direction_export_is_inbound_initiated(
    name: str, make: Make, decoder: Any, reference: Reference
) -> None:
    scope = FlowScope(NetworkConfig())
    flows: FlowBatch = decoder.decode(_scan(make, SYN)).flows
    assert len(flows) == 40, name
    scoped = scope.apply(flows)
    assert len(scoped.flows) == 0 and scoped.ignored == {IgnoreReason.INBOUND_INITIATED: 40}
    # Without the flags the ports say nothing (both high), so the internal ends are taken as
    # the clients: 40 pairs (internal -> scanner) the detector would score.
    blind = scope.apply(decoder.decode(_scan(make, 0)).flows)
    assert len(blind.flows) == 40 and not blind.ignored
    assert np.unique(blind.flows.dst_lo).size == 1  # all towards the scanner


def _periodic_scan(make: Make, flags: int) -> list[bytes]:
    """goflow2 records of a scanner re-probing one internal host's :50050 every 300 s for 8 h
    from source port 40000: what an exporter with a short idle timeout and one direction
    exported sees (each probe its own record)."""
    start_ns = 1_764_547_200 * 10**9
    records = []
    for k in range(96):
        t_ns = start_ns + k * 300 * 10**9 + (k * 7919 % 2000) * 10**6  # +/- 1 s, deterministic
        records.append(make(flags, src_addr=SCANNER, dst_addr=INTERNAL, src_port=40_000,
                            dst_port=50_050, time_flow_start_ns=t_ns, time_flow_end_ns=t_ns,
                            time_received_ns=t_ns, bytes=44, packets=1))  # fmt: skip
    return records


@pytest.mark.parametrize("make", [goflow2_json, goflow2_pb], ids=["json", "pb"])
def test_a_periodic_inbound_syn_scan_never_alerts_through_the_pipeline(make: Make) -> None:
    decoder = GOFLOW2_JSON if make is goflow2_json else GOFLOW2_PB
    for flags in (SYN, 0):
        pipeline = Pipeline(Config(), decoder=decoder)
        records = _periodic_scan(make, flags)
        alerts = [
            a for i in range(0, 96, 8) for a in pipeline.process_records(records[i : i + 8]).alerts
        ]
        assert not alerts, flags
        if flags:  # the flags name the scanner: ignored record by record
            assert pipeline.stats.ignored_by_reason == {IgnoreReason.INBOUND_INITIATED: 96}
        else:  # without them the internal host's fixed port :50050 says it is the server
            assert not pipeline.stats.ignored_by_reason  # (decided per pair, `state.ingest`)
