"""pmacct JSON decoder: real shapes, multi-object records, rejections, batch == reference."""

# ruff: noqa: E501  (rejection tables read best one case per line)

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beaconwatch.decode.base import DecodeResult
from beaconwatch.decode.common.rows import FlowRow, Problem
from beaconwatch.decode.parsed.pmacct_json import PmacctJsonDecoder, decode_record
from beaconwatch.decode.registry import get_decoder
from beaconwatch.decode.scan.batch_scan import ROW_COLUMNS
from beaconwatch.decode.scan.goflow2_json import Goflow2JsonDecoder
from beaconwatch.domain.addresses import ip_to_halves
from beaconwatch.domain.flows import FLOW_COLUMNS
from beaconwatch.domain.rejections import RejectReason

FIXTURES = Path(__file__).parent.parent / "fixtures"
SAME = (FIXTURES / "pmacct" / "same_flows.jsonl").read_bytes().splitlines()
MULTI = [r.encode() for r in json.loads((FIXTURES / "pmacct" / "multi_values.json").read_text())]
GOFLOW2 = (FIXTURES / "goflow2" / "flows.jsonl").read_bytes().splitlines()[:6]
DECODER = PmacctJsonDecoder()


def rows(result: DecodeResult) -> dict[int, list[FlowRow]]:
    out: dict[int, list[FlowRow]] = {}
    flows = result.flows
    for k in range(len(flows)):
        row = FlowRow(*(int(getattr(flows, c)[k]) for c in ROW_COLUMNS))
        out.setdefault(int(flows.record_index[k]), []).append(row)
    return out


def check_against_reference(records: list[bytes], decoder: PmacctJsonDecoder = DECODER) -> None:
    result = decoder.decode(records)
    got = rows(result)
    rejected = {r.record_index: r for r in result.rejections}
    assert len(rejected) == len(result.rejections)
    assert not set(got) & set(rejected)
    assert set(got) | set(rejected) == set(range(len(records)))
    assert list(result.flows.record_index) == sorted(result.flows.record_index)
    for index, record in enumerate(records):
        expected = decode_record(record, decoder.max_record_bytes, decoder.naive_utc_offset_min)
        if isinstance(expected, Problem):
            assert (rejected[index].reason, rejected[index].detail) == tuple(expected), record
            assert len(rejected[index].detail) <= 120
        else:
            assert got.get(index) == expected, record


def test_registry_builds_this_decoder() -> None:
    assert isinstance(get_decoder("pmacct-json"), PmacctJsonDecoder)


def test_same_flows_as_goflow2_give_identical_columns() -> None:
    pmacct = DECODER.decode(SAME)
    goflow2 = Goflow2JsonDecoder(warm_up=False).decode(GOFLOW2)
    assert pmacct.rejections == [] and len(pmacct.flows) == 6
    for name, dtype in FLOW_COLUMNS.items():
        assert getattr(pmacct.flows, name).dtype == np.dtype(dtype)
        assert np.array_equal(getattr(pmacct.flows, name), getattr(goflow2.flows, name)), name
    check_against_reference(SAME)


def test_multi_value_records() -> None:
    result = DECODER.decode(MULTI)
    assert result.rejections == []
    got = rows(result)
    assert [len(got[i]) for i in range(5)] == [3, 2, 1, 1, 1]  # markers skipped
    t = 1767325200_000  # 2026-01-02 03:40:00 UTC
    tcp, udp6, icmp = got[0]
    assert (tcp.start_ms, tcp.end_ms, tcp.proto, tcp.dst_port) == (t + 120, t + 480, 6, 443)
    assert (udp6.dst_hi, udp6.dst_lo) == ip_to_halves("2001:db8:ffff::53") and udp6.proto == 17
    assert icmp.proto == 1 and icmp.dst_port == 2048
    assert got[1][0].start_ms == 1767325210_250 and got[1][0].sampling_rate == 64
    assert got[2][0].proto == 47 and got[2][0].end_ms - got[2][0].start_ms == 30_000
    sflow = got[3][0]  # only timestamp_arrival (RFC 3339 style), "ipv6-icmp"
    assert sflow.start_ms == sflow.end_ms == t + 120_000 and sflow.proto == 58
    check_against_reference(MULTI)


def edit(record: bytes, **changes: Any) -> bytes:
    obj = orjson.loads(record)
    for key, value in changes.items():
        if value is DELETE:
            del obj[key]
        else:
            obj[key] = value
    return orjson.dumps(obj)


DELETE = object()
BASE = SAME[1]
T1 = 1767324716_000


@pytest.mark.parametrize(
    ("record", "reason", "detail_part"),
    [
        (b"\xff" + BASE[1:], RejectReason.INVALID_UTF8, "UTF-8"),
        (BASE[:-1], RejectReason.INVALID_JSON, ""),
        (b"", RejectReason.INVALID_JSON, "empty"),
        (b"\n \n", RejectReason.INVALID_JSON, "empty"),
        (b"[1, 2]", RejectReason.NOT_AN_OBJECT, "list"),
        (edit(BASE, ip_dst=DELETE), RejectReason.MISSING_FIELD, "ip_dst"),
        (edit(BASE, ip_proto=DELETE), RejectReason.MISSING_FIELD, "ip_proto"),
        (edit(BASE, port_dst=DELETE), RejectReason.MISSING_FIELD, "port_dst"),
        (edit(BASE, bytes=DELETE), RejectReason.MISSING_FIELD, "bytes"),
        (edit(BASE, timestamp_start=DELETE, timestamp_arrival=DELETE), RejectReason.MISSING_FIELD, "timestamp"),
        (edit(BASE, timestamp_start="0000-00-00 00:00:00", timestamp_arrival="0.000000"), RejectReason.MISSING_FIELD, "timestamp"),
        (edit(BASE, bytes="272"), RejectReason.INVALID_FIELD, "bytes"),
        (edit(BASE, bytes=-1), RejectReason.INVALID_FIELD, "bytes"),
        (edit(BASE, bytes=2**63), RejectReason.INVALID_FIELD, "bytes"),
        (BASE.replace(b'"bytes": 272', b'"bytes": NaN'), RejectReason.INVALID_FIELD, "NaN"),
        (BASE.replace(b'"bytes": 272', b'"bytes": 1' + b"0" * 30), RejectReason.INVALID_FIELD, "bytes"),
        (edit(BASE, port_dst=65536), RejectReason.INVALID_FIELD, "port_dst"),
        (edit(BASE, sampling_rate=2**32), RejectReason.INVALID_FIELD, "sampling_rate"),
        (edit(BASE, ip_proto="unknown"), RejectReason.INVALID_FIELD, "ip_proto"),
        (edit(BASE, ip_proto=256), RejectReason.INVALID_FIELD, "ip_proto"),
        (edit(BASE, ip_src="300.1.1.1"), RejectReason.INVALID_ADDRESS, "ip_src"),
        (edit(BASE, ip_dst="fe80::1%eth0"), RejectReason.INVALID_ADDRESS, "ip_dst"),
        (edit(BASE, ip_dst=167772161), RejectReason.INVALID_FIELD, "ip_dst"),
        (edit(BASE, timestamp_start="2026-02-30 00:00:00"), RejectReason.INVALID_FIELD, "timestamp_start"),
        (edit(BASE, timestamp_start=True), RejectReason.INVALID_FIELD, "timestamp_start"),
        (edit(BASE, timestamp_start=-5), RejectReason.INVALID_FIELD, "timestamp_start"),
        (edit(BASE, timestamp_end="yesterday"), RejectReason.INVALID_FIELD, "timestamp_end"),
        (SAME[0] + b"\n" + edit(BASE, ip_src="x"), RejectReason.INVALID_ADDRESS, "object 2/2: ip_src"),
        (SAME[0] + b"\n" + BASE[:-3], RejectReason.INVALID_JSON, "object 2/2"),
        (b'{"event_type": "purge_init", "writer_id": "a/1"}', RejectReason.MISSING_FIELD, "markers"),
    ],
)  # fmt: skip
def test_rejections(record: bytes, reason: str, detail_part: str) -> None:
    result = DECODER.decode([SAME[2], record])
    assert rows(result).keys() == {0}
    [rejection] = result.rejections
    assert (rejection.record_index, rejection.reason) == (1, reason)
    assert detail_part in rejection.detail and len(rejection.detail) <= 120
    check_against_reference([SAME[2], record])


@pytest.mark.parametrize(
    ("record", "field", "value"),
    [
        (edit(BASE, ip_proto="6"), "proto", 6),  # kafka_num_protos
        (edit(BASE, ip_proto=6), "proto", 6),
        (edit(BASE, ip_proto="TCP"), "proto", 6),
        (edit(BASE, ip_proto="ipv6-crypt"), "proto", 50),  # pmacct's name for ESP
        (edit(BASE, port_src=DELETE, packets=DELETE, sampling_rate=DELETE), "packets", 1),
        (edit(BASE, sampling_rate=DELETE), "sampling_rate", 1),
        (edit(BASE, timestamp_start="1767324716"), "start_ms", T1),
        (edit(BASE, timestamp_start=1767324716.25), "start_ms", T1 + 250),  # epoch number
        (edit(BASE, timestamp_start=1767324716), "start_ms", T1),
        (edit(BASE, timestamp_start="2026-01-02T04:31:56+01:00"), "start_ms", T1),  # rfc3339
        (edit(BASE, timestamp_start="0000-00-00 00:00:00"), "start_ms", 1767324720_787),  # arrival
        (edit(BASE, timestamp_end=DELETE), "end_ms", T1),
        (edit(BASE, timestamp_end="2026-01-02 03:31:00.000000"), "end_ms", T1),  # clamped
        (
            edit(BASE, timestamp_start="1900-01-01 00:00:00"),
            "start_ms",
            -2208988800_000,
        ),  # passed on
        (BASE + b"\n", "bytes", 272),  # trailing newline (multi_values style)
        (BASE + b"\r\n", "bytes", 272),
    ],
)
def test_accepted_variants(record: bytes, field: str, value: int) -> None:
    result = DECODER.decode([record])
    assert result.rejections == []
    assert int(getattr(result.flows, field)[0]) == value
    check_against_reference([record])


def test_naive_offset_option_and_oversized() -> None:
    decoder = PmacctJsonDecoder(naive_utc_offset_min=-300, max_record_bytes=len(BASE))
    result = decoder.decode([BASE, BASE + b"\n" + BASE])
    assert int(result.flows.start_ms[0]) == T1 + 5 * 3_600_000  # local time at UTC-5
    [rejection] = result.rejections
    assert (rejection.record_index, rejection.reason) == (1, RejectReason.OVERSIZED)
    check_against_reference([BASE, BASE + b"\n" + BASE], decoder)
    with pytest.raises(ValueError):
        PmacctJsonDecoder(naive_utc_offset_min=1440)


def test_empty_batch() -> None:
    result = DECODER.decode([])
    assert len(result.flows) == 0 and result.rejections == []


VALUES = st.one_of(
    st.integers(-(2**70), 2**70), st.integers(0, 70000), st.floats(), st.booleans(), st.none(),
    st.text(max_size=12),
    st.sampled_from(["tcp", "udp", "47", "unknown", "::1", "1.2.3.4", "0000-00-00 00:00:00",
                     "1767324716.5", "2026-01-02 03:31:56", "2026-01-02T03:31:56Z", "0"]),
)  # fmt: skip
KEYS = ["ip_src", "ip_dst", "ip_proto", "port_src", "port_dst", "bytes", "packets",
        "sampling_rate", "timestamp_start", "timestamp_end", "timestamp_arrival", "event_type"]  # fmt: skip


@st.composite
def mutated_records(draw: st.DrawFn) -> bytes:
    objects = draw(st.lists(st.sampled_from([*SAME, MULTI[4]]), min_size=1, max_size=3))
    out = []
    for record in objects:
        for _ in range(draw(st.integers(0, 2))):
            kind = draw(st.integers(0, 4))
            key = draw(st.sampled_from(KEYS))
            try:
                obj = orjson.loads(record)
            except orjson.JSONDecodeError:
                obj = None
            if kind == 0 and isinstance(obj, dict):
                obj[key] = draw(VALUES)
                record = json.dumps(obj).encode()
            elif kind == 1 and isinstance(obj, dict):
                obj.pop(key, None)
                record = json.dumps(obj).encode()
            elif kind == 2:
                record = record[: draw(st.integers(0, len(record)))]
            elif kind == 3 and record:
                at = draw(st.integers(0, len(record) - 1))
                record = record[:at] + bytes([draw(st.integers(0, 255))]) + record[at + 1 :]
            else:
                at = draw(st.integers(0, len(record)))
                record = record[:at] + draw(st.binary(max_size=4)) + record[at:]
        out.append(record)
    return b"\n".join(out)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_records(), min_size=1, max_size=5))
def test_batch_agrees_with_reference_on_mutations(records: list[bytes]) -> None:
    check_against_reference(records)
