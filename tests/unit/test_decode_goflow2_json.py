"""goflow2 JSON decoder: real record shapes, rejections, and fast path == slow path."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beaconwatch.decode.base import DecodeResult
from beaconwatch.decode.common.protocols import name_table
from beaconwatch.decode.common.rows import FlowRow, InvalidError, Problem
from beaconwatch.decode.registry import get_decoder
from beaconwatch.decode.scan.batch_scan import ROW_COLUMNS
from beaconwatch.decode.scan.goflow2_json import Goflow2JsonDecoder
from beaconwatch.decode.scan.goflow2_record import (
    _FIELD_RULES,
    INT_HIGHS,
    RULE_ORDER,
    decode_record,
    field_problem,
)
from beaconwatch.decode.scan.json_scan import (
    BAD_FIELD,
    MISSING,
    NO_TIME,
    OK,
    TRUNCATED,
    key_table,
    scan_batch,
)
from beaconwatch.decode.scan.json_scan import KEYS as SCANNED_KEYS
from beaconwatch.domain.addresses import ip_to_halves
from beaconwatch.domain.flows import FLOW_COLUMNS
from beaconwatch.domain.rejections import RejectReason

FIXTURE = Path(__file__).parent.parent / "fixtures" / "goflow2" / "flows.jsonl"
RECORDS: list[bytes] = FIXTURE.read_bytes().splitlines()
DECODER = Goflow2JsonDecoder()


def rows(result: DecodeResult) -> dict[int, FlowRow]:
    flows = result.flows
    return {
        int(flows.record_index[k]): FlowRow(*(int(getattr(flows, c)[k]) for c in ROW_COLUMNS))
        for k in range(len(flows))
    }


def fast_status(records: list[bytes]) -> np.ndarray:
    lengths = np.array([len(r) for r in records], dtype=np.int64)
    ends = np.cumsum(lengths)
    keys, key_lens = key_table()
    status, *_ = scan_batch(
        np.frombuffer(b"".join(records), dtype=np.uint8), ends - lengths, ends, keys, key_lens,
        *name_table(),
    )  # fmt: skip
    return status


def check_against_reference(records: list[bytes], decoder: Goflow2JsonDecoder = DECODER) -> None:
    """The batch decoder must equal the one-record reference path on every record."""
    result = decoder.decode(records)
    got = rows(result)
    rejected = {r.record_index: r for r in result.rejections}
    assert not set(got) & set(rejected)
    assert set(got) | set(rejected) == set(range(len(records)))
    for index, record in enumerate(records):
        expected = decode_record(record, decoder.max_record_bytes, decoder.unknown_proto)
        if isinstance(expected, FlowRow):
            assert got.get(index) == expected, record
        else:
            assert index in rejected, record
            assert (rejected[index].reason, rejected[index].detail) == tuple(expected)


def test_registry_builds_this_decoder() -> None:
    assert isinstance(get_decoder("goflow2-json"), Goflow2JsonDecoder)


def test_fixture_records_decode_on_the_fast_path() -> None:
    assert len(RECORDS) >= 12 and all(900 < len(r) < 1100 for r in RECORDS)
    assert (fast_status(RECORDS) == OK).all()
    result = DECODER.decode(RECORDS)
    assert result.rejections == []
    assert len(result.flows) == len(RECORDS)
    check_against_reference(RECORDS)


def test_fixture_values() -> None:
    got = rows(DECODER.decode(RECORDS))
    t_ms = 1767324720_000
    udp = got[0]
    assert udp.start_ms == udp.end_ms == t_ms
    assert (udp.src_hi, udp.src_lo) == ip_to_halves("192.168.89.2")
    assert (udp.dst_hi, udp.dst_lo) == ip_to_halves("192.168.88.30")
    assert (udp.src_port, udp.dst_port, udp.proto) == (53, 55743, 17)
    assert (udp.bytes, udp.packets, udp.sampling_rate) == (143, 1, 0)  # 0 kept as given
    assert got[1].start_ms == t_ms - 4000 and got[1].proto == 6
    assert got[2].sampling_rate == 1000 and got[2].end_ms == t_ms + 1250
    assert got[3].proto == 1 and got[3].dst_port == 0
    v6 = got[5]
    assert (v6.dst_hi, v6.dst_lo) == ip_to_halves("2606:4700:4700::1111")
    assert got[6].proto == 58 and got[9].proto == 58  # "IPv6-ICMP" and "ICMPv6"
    sflow = got[8]  # no flow times: falls back to time_received_ns
    assert sflow.start_ms == sflow.end_ms == (1767324720_000000000 + 4_000_000_000) // 10**6
    mapped = got[11]  # netip prints 16-byte IPv4 as ::ffff:a.b.c.d: same key as the IPv4 text
    assert (mapped.src_hi, mapped.src_lo) == ip_to_halves("10.9.8.7")
    assert got[12].proto == 47  # GRE


def test_dtypes_and_record_index_with_mixed_batch() -> None:
    batch = [RECORDS[0], b"not json", RECORDS[5], b"", RECORDS[8]]
    result = DECODER.decode(batch)
    assert result.flows.record_index.tolist() == [0, 2, 4]
    assert [r.record_index for r in result.rejections] == [1, 3]
    for name, dtype in FLOW_COLUMNS.items():
        assert getattr(result.flows, name).dtype == np.dtype(dtype)


def test_empty_batch() -> None:
    result = DECODER.decode([])
    assert len(result.flows) == 0 and result.rejections == []


def edit(record: bytes, **changes: Any) -> bytes:
    obj = orjson.loads(record)
    for key, value in changes.items():
        if value is DELETE:
            del obj[key]
        else:
            obj[key] = value
    return orjson.dumps(obj)


DELETE = object()
BASE = RECORDS[0]


@pytest.mark.parametrize(
    ("record", "reason", "detail_part"),
    [
        (b"\xff" + BASE[1:], RejectReason.INVALID_UTF8, "UTF-8"),
        (BASE.replace(b'"UDP"', b'"\xc3\x28"'), RejectReason.INVALID_UTF8, "UTF-8"),
        (BASE[:-1], RejectReason.INVALID_JSON, ""),
        (b"", RejectReason.INVALID_JSON, ""),
        (b"[1, 2]", RejectReason.NOT_AN_OBJECT, "list"),
        (b'"x"', RejectReason.NOT_AN_OBJECT, "str"),
        (edit(BASE, dst_addr=DELETE), RejectReason.MISSING_FIELD, "dst_addr"),
        (edit(BASE, src_addr=DELETE), RejectReason.MISSING_FIELD, "src_addr"),
        (edit(BASE, proto=DELETE), RejectReason.MISSING_FIELD, "proto"),
        (edit(BASE, dst_port=DELETE), RejectReason.MISSING_FIELD, "dst_port"),
        (edit(BASE, bytes=DELETE), RejectReason.MISSING_FIELD, "bytes"),
        (
            edit(BASE, time_flow_start_ns=DELETE, time_received_ns=DELETE),
            RejectReason.MISSING_FIELD,
            "time",
        ),
        (edit(BASE, time_flow_start_ns=0, time_received_ns=0), RejectReason.MISSING_FIELD, "time"),
        (edit(BASE, bytes="143"), RejectReason.INVALID_FIELD, "bytes"),
        (edit(BASE, bytes=143.0), RejectReason.INVALID_FIELD, "bytes"),
        (edit(BASE, bytes=True), RejectReason.INVALID_FIELD, "bytes"),
        (edit(BASE, bytes=None), RejectReason.INVALID_FIELD, "bytes"),
        (edit(BASE, bytes=-1), RejectReason.INVALID_FIELD, "bytes"),
        (edit(BASE, bytes=2**63), RejectReason.INVALID_FIELD, "bytes"),
        (edit(BASE, packets=2**64 - 1), RejectReason.INVALID_FIELD, "packets"),
        (
            BASE.replace(b'"bytes":143', b'"bytes":1' + b"0" * 30),
            RejectReason.INVALID_FIELD,
            "bytes",
        ),
        (BASE.replace(b'"bytes":143', b'"bytes":NaN'), RejectReason.INVALID_FIELD, "NaN"),
        (BASE.replace(b'"bytes":143', b'"bytes":1e400'), RejectReason.INVALID_FIELD, "bytes"),
        (BASE.replace(b'"ip_ttl":0', b'"ip_ttl":NaN'), RejectReason.INVALID_JSON, ""),
        (edit(BASE, dst_port=65536), RejectReason.INVALID_FIELD, "dst_port"),
        (edit(BASE, src_port=-5), RejectReason.INVALID_FIELD, "src_port"),
        (edit(BASE, sampling_rate=2**32), RejectReason.INVALID_FIELD, "sampling_rate"),
        (edit(BASE, time_flow_start_ns=-1), RejectReason.INVALID_FIELD, "time_flow_start_ns"),
        (edit(BASE, proto="unknown"), RejectReason.INVALID_FIELD, "proto"),
        (edit(BASE, proto=""), RejectReason.INVALID_FIELD, "proto"),
        (edit(BASE, proto=256), RejectReason.INVALID_FIELD, "proto"),
        (edit(BASE, proto="256"), RejectReason.INVALID_FIELD, "proto"),
        (edit(BASE, src_addr=""), RejectReason.INVALID_ADDRESS, "src_addr"),
        (edit(BASE, dst_addr="300.1.1.1"), RejectReason.INVALID_ADDRESS, "dst_addr"),
        (edit(BASE, dst_addr="fe80::1%eth0"), RejectReason.INVALID_ADDRESS, "dst_addr"),
        (edit(BASE, dst_addr=167772161), RejectReason.INVALID_FIELD, "dst_addr"),
    ],
)
def test_rejections(record: bytes, reason: str, detail_part: str) -> None:
    result = DECODER.decode([RECORDS[1], record])
    assert rows(result).keys() == {0}
    [rejection] = result.rejections
    assert rejection.record_index == 1
    assert rejection.reason == reason
    assert detail_part in rejection.detail
    assert len(rejection.detail) <= 120


@pytest.mark.parametrize(
    ("record", "field", "value"),
    [
        (edit(BASE, proto=6), "proto", 6),  # `none` renderer: a plain number
        (edit(BASE, proto="47"), "proto", 47),
        (edit(BASE, proto="reserved"), "proto", 255),
        (edit(BASE, packets=DELETE), "packets", 1),
        (edit(BASE, sampling_rate=DELETE), "sampling_rate", 1),
        (edit(BASE, src_port=DELETE), "src_port", 0),
        (edit(BASE, time_flow_end_ns=DELETE), "end_ms", 1767324720_000),
        (edit(BASE, time_flow_end_ns=1767324719_000000000), "end_ms", 1767324720_000),  # clamped
        (edit(BASE, time_flow_start_ns=DELETE), "start_ms", 1767324720_787),
        (edit(BASE, bytes=2**63 - 1), "bytes", 2**63 - 1),
        (BASE.replace(b'"bytes":143', b'"bytes":-0'), "bytes", 0),
        (edit(BASE, dst_addr="::FFFF:8.8.8.8"), "dst_lo", 0xFFFF_0808_0808),
        (json.dumps(orjson.loads(BASE), indent=2).encode(), "dst_port", 55743),  # whitespace
        (BASE.replace(b'"etype":"IPv4"', b'"etype":"IPv\\u0034"'), "proto", 17),  # escapes
        (BASE.replace(b'"bytes":143', b'"bytes":99,"bytes":143'), "bytes", 143),  # last wins
        (BASE.replace(b'"as_path":[]', b'"as_path":[1.5e3,{"a":[null]}]'), "bytes", 143),
        (BASE.replace(b'"ip_ttl":0', b'"ip_ttl":123456789012345678901234'), "bytes", 143),
        (BASE.replace(b'"src_mac":"42:61', b'"src_mac":"\xc3\xa942:61'), "bytes", 143),
    ],
)
def test_accepted_variants(record: bytes, field: str, value: int) -> None:
    result = DECODER.decode([record])
    assert result.rejections == []
    assert int(getattr(result.flows, field)[0]) == value
    check_against_reference([record])


def test_unknown_proto_option() -> None:
    decoder = Goflow2JsonDecoder(unknown_proto=255, warm_up=False)
    result = decoder.decode([edit(BASE, proto="unknown"), edit(BASE, proto="TCP")])
    assert result.flows.proto.tolist() == [255, 6]


def test_oversized_records() -> None:
    decoder = Goflow2JsonDecoder(max_record_bytes=1000, warm_up=False)
    big = edit(BASE, src_mac="x" * 2000)
    result = decoder.decode([BASE, big, BASE])
    assert result.flows.record_index.tolist() == [0, 2]
    [rejection] = result.rejections
    assert (rejection.record_index, rejection.reason) == (1, RejectReason.OVERSIZED)
    assert str(len(big)) in rejection.detail
    check_against_reference([BASE, big, BASE], decoder)


# Property tests: mutate real records in every way that matters and compare with the reference.

VALUES = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(0, 70000),
    st.floats(allow_nan=False),
    st.booleans(),
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["TCP", "UDP", "ICMP", "IPv6-ICMP", "unknown", "17", "010", "::1", "1.2.3.4"]),
    st.lists(st.integers(0, 9), max_size=3),
)
RAW_VALUES = st.sampled_from(
    [b"NaN", b"-Infinity", b"1e400", b"-0", b"01", b"1.0", b"1E2", b"9" * 25, b"-",
     b'"\\u0041"', b'"\\ud800"', b"tru", b"[1,]", b"{}", b'{"a":1}', b"[[[[[]]]]]", b'"a\tb"',
     b"[" * 40 + b"]" * 40]
)  # fmt: skip
KEYS = [
    "time_flow_start_ns", "time_flow_end_ns", "time_received_ns", "src_addr", "dst_addr",
    "proto", "src_port", "dst_port", "bytes", "packets", "sampling_rate", "tcp_flags", "ip_ttl",
    "as_path",
]  # fmt: skip


def _loads_or_none(record: bytes) -> Any:
    try:
        return orjson.loads(record)
    except orjson.JSONDecodeError:
        return None


@st.composite
def mutated_records(draw: st.DrawFn) -> bytes:
    record = draw(st.sampled_from(RECORDS))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.integers(0, 7))
        key = draw(st.sampled_from(KEYS))
        obj = _loads_or_none(record)
        if kind == 0 and isinstance(obj, dict):
            obj[key] = draw(VALUES)  # json.dumps: also ints beyond 64 bits and Infinity
            record = json.dumps(obj, separators=(",", ":")).encode()
        elif kind == 1 and isinstance(obj, dict):
            obj.pop(key, None)
            record = json.dumps(obj, separators=(",", ":")).encode()
        elif kind == 2:  # raw token replacement of a value
            marker = f'"{key}":'.encode()
            at = record.find(marker)
            if at >= 0:
                start = at + len(marker)
                end = start
                while end < len(record) and record[end : end + 1] not in (b",", b"}"):
                    end += 1
                record = record[:start] + draw(RAW_VALUES) + record[end:]
        elif kind == 3:  # duplicate key
            record = record[:1] + f'"{key}":{draw(st.integers(0, 99))},'.encode() + record[1:]
        elif kind == 4:  # truncation
            record = record[: draw(st.integers(0, len(record)))]
        elif kind == 5 and record:  # byte flip
            at = draw(st.integers(0, len(record) - 1))
            record = record[:at] + bytes([draw(st.integers(0, 255))]) + record[at + 1 :]
        elif kind == 6:  # whitespace between tokens
            ws = draw(st.sampled_from([b" ", b"\n", b"\t", b"\r\n  ", b"\x0b"]))
            record = record.replace(b",", b"," + ws, draw(st.integers(1, 5)))
        else:  # splice random bytes
            at = draw(st.integers(0, len(record)))
            record = record[:at] + draw(st.binary(max_size=6)) + record[at:]
    return record


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_records(), min_size=1, max_size=6))
def test_fast_path_agrees_with_reference_on_mutations(records: list[bytes]) -> None:
    check_against_reference(records)


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
        max_leaves=20,
    )
)
def test_arbitrary_json_values_never_raise(value: object) -> None:
    check_against_reference([json.dumps(value).encode()])


def test_reference_is_total_on_deep_nesting() -> None:
    deep = b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert isinstance(decode_record(deep, 10**7), Problem | FlowRow)
    check_against_reference([deep], Goflow2JsonDecoder(max_record_bytes=10**7, warm_up=False))


def test_keys_that_differ_from_the_remembered_ones_are_read_in_full() -> None:
    """The scanner knows a key by comparing it with the key at the same position in the
    records before; a key that differs in any one byte (a letter, an escape, a control byte,
    non-ASCII) must be read in full, so the batch still equals the reference record by
    record, and the plain records around it stay on the fast path."""
    key_spans = [(m.start(), m.end()) for m in re.finditer(rb'"[a-z0-9_]+":', BASE)]
    assert len(key_spans) == len(orjson.loads(BASE))
    batch = []
    for start, end in key_spans:
        for at in range(start + 1, end - 2, 3):  # every third byte of every key
            for byte in (b"q", b"\\", b"\x01", b"\xc3"):
                batch += [BASE, BASE[:at] + byte + BASE[at + 1 :]]
    check_against_reference(batch)
    assert all(status == OK for status in fast_status(batch)[::2])


# Rejections straight from the scanner's status (json_reject): the reference's exact answers,
# without the reference parse for the storm kinds.


def test_every_cut_of_a_record_is_judged_by_the_scanner() -> None:
    """Every prefix (after the opening brace) of plain records is TRUNCATED: orjson's
    'unexpected end of data' at the length, also across newlines."""
    pretty = json.dumps(orjson.loads(BASE), indent=1).encode()
    for record in (BASE, RECORDS[1], pretty):
        cuts = [record[:n] for n in range(1, len(record))]
        assert set(fast_status_codes(cuts)) == {TRUNCATED}
        check_against_reference(cuts)


def fast_status_codes(records: list[bytes]) -> list[int]:
    codes: list[int] = fast_status(records).tolist()
    return codes


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"bytes": "many"}, BAD_FIELD),
        ({"src_port": 70_000}, BAD_FIELD),
        ({"dst_addr": "10.0.0.300"}, BAD_FIELD),
        ({"time_flow_start_ns": -1}, BAD_FIELD),
        ({"proto": ["TCP"]}, BAD_FIELD),
        ({"src_addr": 167_772_161}, BAD_FIELD),
        ({"proto": "no-such-protocol"}, BAD_FIELD),
        ({"sampling_rate": 2**32, "bytes": "x"}, BAD_FIELD),  # bytes comes first in the rules
        ({"dst_port": DELETE}, MISSING),
        ({"src_addr": DELETE, "bytes": -1}, MISSING),  # src_addr comes first
        ({"time_flow_start_ns": 0, "time_received_ns": 0}, NO_TIME),
    ],
)
def test_bad_fields_are_judged_by_the_scanner(changes: dict[str, Any], status: int) -> None:
    record = edit(BASE, **changes)
    assert fast_status_codes([record]) == [status]
    check_against_reference([record, record])  # the second answer may come from the memo
    check_against_reference([record], Goflow2JsonDecoder(unknown_proto=255, warm_up=False))


def test_values_the_field_rule_accepts_go_to_the_reference() -> None:
    """-0 and protocol names only the reference knows are flagged but not rejected."""
    for record in (
        BASE.replace(b'"bytes":143', b'"bytes":-0'),
        edit(BASE, proto="unknown"),
    ):
        assert fast_status_codes([record]) == [BAD_FIELD]
    check_against_reference(
        [edit(BASE, proto="unknown")], Goflow2JsonDecoder(unknown_proto=255, warm_up=False)
    )


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(list(INT_HIGHS)), st.integers(-(2**65), 2**65))
def test_field_problem_int_shortcut_is_the_rule(key: str, value: int) -> None:
    try:
        _FIELD_RULES[key]({key: value}, None)
    except InvalidError as exc:
        assert field_problem(key, value) == exc.problem
    else:
        assert field_problem(key, value) is None


def test_rule_order_is_the_scanner_key_order() -> None:
    assert SCANNED_KEYS == RULE_ORDER
