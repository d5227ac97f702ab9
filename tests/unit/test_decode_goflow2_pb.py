"""goflow2 protobuf decoder: real goflow2 output, schema, rejections, and fast == slow path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from beaconwatch.decode.base import DecodeResult
from beaconwatch.decode.common.rows import FlowRow
from beaconwatch.decode.registry import get_decoder
from beaconwatch.decode.scan.batch_scan import ROW_COLUMNS
from beaconwatch.decode.scan.goflow2_json import Goflow2JsonDecoder
from beaconwatch.decode.scan.goflow2_names import NAME_FIELD
from beaconwatch.decode.scan.goflow2_pb import Goflow2PbDecoder, delimited
from beaconwatch.decode.scan.goflow2_pb_record import decode_record, read_varint
from beaconwatch.decode.scan.goflow2_pb_record import encode_varint as _varint
from beaconwatch.decode.scan.goflow2_pb_schema import ENUMS, FIELDS, flow_message_class
from beaconwatch.decode.scan.pb_wire import BAD_FIELD, MISSING, NO_TIME, OK, field_kinds, scan_batch
from beaconwatch.domain.addresses import ip_to_halves
from beaconwatch.domain.flows import FLOW_COLUMNS
from beaconwatch.domain.rejections import RejectReason

FIXTURES = Path(__file__).parent.parent / "fixtures" / "goflow2"
PROTO_FILE = (
    Path(__file__).parent.parent.parent
    / "service"
    / "beaconwatch"
    / "decode"
    / "scan"
    / "proto"
    / "flow.proto"
)
DECODER = Goflow2PbDecoder()
FlowMessage = DECODER.message_class


def split_delimited(data: bytes) -> list[bytes]:
    """A goflow2 ``-format=bin`` file (no separator) -> one record per message, prefix kept."""
    records, pos = [], 0
    while pos < len(data):
        prefix = read_varint(data, pos)
        assert prefix is not None
        length, body_at = prefix
        records.append(data[pos : body_at + length])
        pos = body_at + length
    return records


RECORDS = split_delimited((FIXTURES / "flows.bin").read_bytes())


def rows(result: DecodeResult) -> dict[int, FlowRow]:
    flows = result.flows
    return {
        int(flows.record_index[k]): FlowRow(*(int(getattr(flows, c)[k]) for c in ROW_COLUMNS))
        for k in range(len(flows))
    }


def fast_status(records: list[bytes]) -> np.ndarray:
    lengths = np.array([len(r) for r in records], dtype=np.int64)
    ends = np.cumsum(lengths)
    buf = np.frombuffer(b"".join(records), dtype=np.uint8)
    status, *_ = scan_batch(buf, ends - lengths, ends, field_kinds(), NAME_FIELD)
    return status


def check_against_reference(records: list[bytes], decoder: Goflow2PbDecoder = DECODER) -> None:
    """The batch decoder must equal the one-record reference path on every record."""
    result = decoder.decode(records)
    got = rows(result)
    rejected = {r.record_index: r for r in result.rejections}
    assert not set(got) & set(rejected)
    assert set(got) | set(rejected) == set(range(len(records)))
    for index, record in enumerate(records):
        expected = decode_record(record, decoder.max_record_bytes, decoder.message_class)
        if isinstance(expected, FlowRow):
            assert got.get(index) == expected, record
        else:
            assert index in rejected, record
            assert (rejected[index].reason, rejected[index].detail) == tuple(expected)
            assert len(rejected[index].detail) <= 120


def record(**fields: Any) -> bytes:
    return delimited(FlowMessage(**fields).SerializeToString())


BASE_FIELDS: dict[str, Any] = {
    "type": 4,
    "time_received_ns": 1767324720787460121,
    "sequence_num": 65361,
    "sampler_address": bytes([192, 168, 88, 1]),
    "time_flow_start_ns": 1767324720000000000,
    "time_flow_end_ns": 1767324721000000000,
    "bytes": 143,
    "packets": 2,
    "src_addr": bytes([192, 168, 89, 2]),
    "dst_addr": bytes([192, 168, 88, 30]),
    "etype": 0x800,
    "proto": 17,
    "src_port": 53,
    "dst_port": 55743,
    "as_path": [64512, 13335],
}
BASE = record(**BASE_FIELDS)


def edited(**changes: Any) -> bytes:
    return record(**{**BASE_FIELDS, **changes})


def test_registry_builds_this_decoder() -> None:
    assert isinstance(get_decoder("goflow2-pb"), Goflow2PbDecoder)


def test_proto_file_states_the_runtime_schema() -> None:
    """proto/flow.proto (for people and protoc) and the table the decoder builds from agree."""
    text = re.sub(r"//[^\n]*", "", PROTO_FILE.read_text())
    message = text[text.index("message FlowMessage") :]
    declared = re.findall(r"(repeated\s+)?(\w+)\s+(\w+)\s*=\s*(\d+)\s*;", message)
    enums = dict(re.findall(r"enum\s+(\w+)\s*\{([^}]*)\}", message))
    table = {(f.name, f.number, f.type.removeprefix("enum:"), f.repeated) for f in FIELDS}
    fields = {
        (name, int(number), kind, bool(rep))
        for rep, kind, name, number in declared
        if kind not in ("=",) and name not in {v for vs in ENUMS.values() for v, _ in vs}
    }
    assert fields == table
    for enum_name, values in ENUMS.items():
        body = re.findall(r"(\w+)\s*=\s*(\d+)\s*;", enums[enum_name])
        assert [(name, int(number)) for name, number in body] == list(values)


def test_real_goflow2_records_decode_on_the_fast_path() -> None:
    assert len(RECORDS) == 9
    assert (fast_status(RECORDS) == OK).all()
    result = DECODER.decode(RECORDS)
    assert result.rejections == [] and len(result.flows) == 9
    check_against_reference(RECORDS)


def test_real_goflow2_values() -> None:
    got = rows(DECODER.decode(RECORDS))
    export_ms = 1767324720_000
    tcp = got[0]  # NetFlow v9: times from the router uptime, sampling from the options record
    assert (tcp.start_ms, tcp.end_ms) == (export_ms - 4000, export_ms - 250)
    assert (tcp.src_hi, tcp.src_lo) == ip_to_halves("10.1.2.3")
    assert (tcp.dst_hi, tcp.dst_lo) == ip_to_halves("203.0.113.7")
    assert (tcp.src_port, tcp.dst_port, tcp.proto) == (49152, 443, 6)
    assert (tcp.bytes, tcp.packets, tcp.sampling_rate) == (1500, 3, 100)
    assert got[2].proto == 1 and got[2].dst_port == 0x0800  # ICMP type/code in the port
    v6 = got[3]
    assert (v6.dst_hi, v6.dst_lo) == ip_to_halves("2606:4700:4700::1111")
    assert got[5].proto == 58
    big = got[6]  # IPFIX, absolute milliseconds, 64-bit counter, no sampling
    assert (big.start_ms, big.bytes, big.packets, big.sampling_rate) == (
        export_ms - 60000, 2**40 + 5, 70000, 0,
    )  # fmt: skip
    assert got[8].proto == 47 and got[8].dst_port == 0


def test_pb_and_json_decoders_agree_on_the_same_real_flows() -> None:
    """goflow2 wrote the same packets once with -format=bin and once with -format=json."""
    json_records = (FIXTURES / "flows-from-netflow.jsonl").read_bytes().splitlines()
    from_json = Goflow2JsonDecoder().decode(json_records)
    from_pb = DECODER.decode(RECORDS)
    assert from_json.rejections == [] and from_pb.rejections == []
    for name in FLOW_COLUMNS:
        assert getattr(from_pb.flows, name).tolist() == getattr(from_json.flows, name).tolist()


def test_dtypes_and_record_index_with_mixed_batch() -> None:
    batch = [RECORDS[0], b"\x03abc", RECORDS[5], b"", RECORDS[8]]
    result = DECODER.decode(batch)
    assert result.flows.record_index.tolist() == [0, 2, 4]
    assert [r.record_index for r in result.rejections] == [1, 3]
    for name, dtype in FLOW_COLUMNS.items():
        assert getattr(result.flows, name).dtype == np.dtype(dtype)


def test_empty_batch() -> None:
    result = DECODER.decode([])
    assert len(result.flows) == 0 and result.rejections == []


def tag(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def body(rec: bytes) -> bytes:
    prefix = read_varint(rec, 0)
    assert prefix is not None
    return rec[prefix[1] :]


def rewrap(message_body: bytes) -> bytes:
    return delimited(message_body)


INVALID_PB = RejectReason.INVALID_PROTOBUF


@pytest.mark.parametrize(
    ("rec", "reason", "detail_part"),
    [
        (b"", INVALID_PB, "empty"),
        (b"\xff\xff", INVALID_PB, "prefix"),
        (b"\xff" * 11, INVALID_PB, "prefix"),
        (BASE[:-1], INVALID_PB, "length prefix"),
        (BASE + b"\x00", INVALID_PB, "length prefix"),
        (body(BASE), INVALID_PB, "length prefix"),
        (BASE + BASE, INVALID_PB, "length prefix"),  # two messages in one record
        (rewrap(body(BASE) + tag(30, 0)), INVALID_PB, "FlowMessage"),  # truncated varint
        (rewrap(body(BASE) + tag(11, 2) + b"\x05ab"), INVALID_PB, "FlowMessage"),
        (rewrap(body(BASE) + tag(0, 0) + b"\x01"), INVALID_PB, "FlowMessage"),  # field 0
        (rewrap(body(BASE) + tag(40, 6) + b"\x01"), INVALID_PB, "FlowMessage"),
        (rewrap(body(BASE) + tag(40, 4)), INVALID_PB, "FlowMessage"),  # unmatched end group
        (rewrap(body(BASE) + tag(102, 2) + b"\x02\x80\x80"), INVALID_PB, "FlowMessage"),
        (rewrap(body(BASE) + tag(50, 0) + b"\xff" * 10 + b"\x01"), INVALID_PB, "FlowMessage"),
        (edited(src_addr=b""), RejectReason.MISSING_FIELD, "src_addr"),
        (edited(dst_addr=b""), RejectReason.MISSING_FIELD, "dst_addr"),
        (edited(src_addr=b"\x01\x02\x03"), RejectReason.INVALID_ADDRESS, "src_addr"),
        (edited(dst_addr=bytes(17)), RejectReason.INVALID_ADDRESS, "dst_addr"),
        (edited(time_flow_start_ns=0, time_received_ns=0), RejectReason.MISSING_FIELD, "time"),
        (edited(time_flow_start_ns=2**63), RejectReason.INVALID_FIELD, "time_flow_start_ns"),
        (edited(time_flow_end_ns=2**64 - 1), RejectReason.INVALID_FIELD, "time_flow_end_ns"),
        (edited(time_received_ns=2**63), RejectReason.INVALID_FIELD, "time_received_ns"),
        (edited(bytes=2**63), RejectReason.INVALID_FIELD, "bytes"),
        (edited(packets=2**64 - 1), RejectReason.INVALID_FIELD, "packets"),
        (edited(sampling_rate=2**32), RejectReason.INVALID_FIELD, "sampling_rate"),
        (edited(proto=256), RejectReason.INVALID_FIELD, "proto"),
        (edited(dst_port=65536), RejectReason.INVALID_FIELD, "dst_port"),
        (edited(src_port=2**32 - 1), RejectReason.INVALID_FIELD, "src_port"),
    ],
)
def test_rejections(rec: bytes, reason: str, detail_part: str) -> None:
    result = DECODER.decode([RECORDS[1], rec])
    assert rows(result).keys() == {0}
    [rejection] = result.rejections
    assert (rejection.record_index, rejection.reason) == (1, reason)
    assert detail_part in rejection.detail
    check_against_reference([RECORDS[1], rec])


@pytest.mark.parametrize(
    ("rec", "field", "value"),
    [
        (edited(packets=0), "packets", 0),  # proto3: absent is 0, as goflow2 writes in JSON
        (edited(sampling_rate=0), "sampling_rate", 0),
        (edited(proto=0, dst_port=0), "proto", 0),
        (edited(time_flow_end_ns=0), "end_ms", 1767324720_000),
        (edited(time_flow_end_ns=1767324719_000000000), "end_ms", 1767324720_000),  # clamped
        (edited(time_flow_start_ns=0), "start_ms", 1767324720_787),  # sFlow: receive time
        (edited(time_flow_start_ns=0, time_received_ns=1), "start_ms", 0),  # passed through
        (edited(bytes=2**63 - 1), "bytes", 2**63 - 1),
        (
            edited(dst_addr=bytes(10) + b"\xff\xff" + bytes([8, 8, 8, 8])),
            "dst_lo",
            0xFFFF_0808_0808,
        ),
        (rewrap(body(BASE) + tag(20, 0) + _varint(2**32 + 6)), "proto", 6),  # low 32 bits
        (rewrap(body(BASE) + tag(9, 0) + _varint(99)), "bytes", 99),  # last one wins
        (rewrap(body(BASE) + tag(999, 2) + b"\x03xyz"), "bytes", 143),  # unknown fields
        (rewrap(body(BASE) + tag(998, 1) + bytes(8) + tag(997, 5) + bytes(4)), "bytes", 143),
        (rewrap(body(BASE) + tag(11, 0) + b"\x01"), "bytes", 143),  # wire type mismatch
        (rewrap(body(BASE) + tag(102, 0) + b"\x07"), "bytes", 143),  # unpacked repeated
        (rewrap(tag(9, 0) + b"\x80\x01" + body(edited(bytes=0))), "bytes", 128),
        (rewrap(body(BASE) + tag(20, 0) + b"\x91\x80\x00"), "proto", 17),  # non-canonical
        (rewrap(body(BASE) + tag(40, 3) + tag(1, 0) + b"\x01" + tag(40, 4)), "bytes", 143),
        (rewrap(body(BASE) + tag(20, 2) + b"\x01\x06"), "proto", 17),  # LEN: unknown field
    ],
)
def test_accepted_variants(rec: bytes, field: str, value: int) -> None:
    result = DECODER.decode([rec])
    assert result.rejections == []
    assert int(getattr(result.flows, field)[0]) == value
    check_against_reference([rec])


def test_oversized_records() -> None:
    decoder = Goflow2PbDecoder(max_record_bytes=200, warm_up=False)
    big = edited(sampler_address=bytes(300))
    result = decoder.decode([BASE, big, BASE])
    assert result.flows.record_index.tolist() == [0, 2]
    [rejection] = result.rejections
    assert (rejection.record_index, rejection.reason) == (1, RejectReason.OVERSIZED)
    assert str(len(big)) in rejection.detail
    check_against_reference([BASE, big, BASE], decoder)


def test_message_class_is_private_to_the_decoder() -> None:
    assert flow_message_class().DESCRIPTOR.full_name == "flowpb.FlowMessage"


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"dst_port": 70_000}, BAD_FIELD),
        ({"proto": 256}, BAD_FIELD),
        ({"src_addr": b"\x0a\x00\x01"}, BAD_FIELD),
        ({"dst_addr": bytes(17)}, BAD_FIELD),
        ({"bytes": 2**63}, BAD_FIELD),
        ({"sampling_rate": 2**32, "src_port": 65_536}, BAD_FIELD),  # src_port first
        ({"time_flow_end_ns": 2**64 - 1}, BAD_FIELD),
        ({"src_addr": b""}, MISSING),
        ({"dst_addr": b"", "proto": 300}, MISSING),  # dst_addr first
        ({"time_flow_start_ns": 0, "time_received_ns": 0}, NO_TIME),
    ],
)
def test_rule_breaks_are_judged_by_the_scanner(changes: dict[str, Any], status: int) -> None:
    """Well-formed messages breaking a field rule: no protobuf runtime parse, same answer."""
    bad = record(**{**BASE_FIELDS, **changes})
    assert fast_status([bad]).tolist() == [status]
    check_against_reference([bad, RECORDS[0], bad])  # the second answer may come from the memo
