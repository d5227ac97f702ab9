"""Zeek conn.log decoders (zeek-json, zeek-tsv incl. CSV): real shapes, semantics, hostile input."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import orjson
import pytest
from evaluation.data_dir import find_shared_data
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beaconwatch.decode.base import Decoder, DecodeResult
from beaconwatch.decode.registry import get_decoder
from beaconwatch.decode.zeek.zeek_common import iso_to_ms
from beaconwatch.decode.zeek.zeek_json import ZeekJsonDecoder
from beaconwatch.decode.zeek.zeek_tsv import (
    ZeekHeader,
    ZeekTsvDecoder,
    read_zeek_column,
    read_zeek_labels,
    read_zeek_log,
)
from beaconwatch.domain.addresses import ip_to_halves
from beaconwatch.domain.rejections import RejectReason

FIXTURES = Path(__file__).parent.parent / "fixtures" / "zeek"
_FOUND = find_shared_data()
assert _FOUND is not None, "the labelled captures (../shared/data) are needed by these tests"
SHARED = _FOUND
NJRAT = SHARED / "stratosphere-njrat" / "conn.log.labeled"
BENIGN = SHARED / "stratosphere-windows-benign" / "conn.log.labeled"
HUE = SHARED / "iot23-philips-hue" / "CTU-Honeypot-Capture-4-1-labeled.csv"
JSON_RECORDS = (FIXTURES / "conn.json").read_bytes().splitlines()
JSON_DECODER = ZeekJsonDecoder()


def table(result: DecodeResult) -> dict[int, dict[str, int]]:
    f = result.flows
    names = ["start_ms", "end_ms", "src_hi", "src_lo", "dst_hi", "dst_lo", "src_port",
             "dst_port", "proto", "bytes", "packets", "sampling_rate"]  # fmt: skip
    return {
        int(f.record_index[k]): {n: int(getattr(f, n)[k]) for n in names} for k in range(len(f))
    }


def addr(text: str) -> dict[str, int]:
    hi, lo = ip_to_halves(text)
    return {"hi": hi, "lo": lo}


def check_invariant(result: DecodeResult, n: int) -> None:
    """Every record is either decoded (exactly one flow here) or rejected, never both."""
    decoded = [int(i) for i in result.flows.record_index]
    rejected = [r.record_index for r in result.rejections]
    assert len(set(decoded)) == len(decoded)
    assert not set(decoded) & set(rejected)
    assert sorted(decoded + rejected) == list(range(n))
    assert all(r.reason and r.detail for r in result.rejections)


# The same four connections are in all three fixture files.
EXPECTED = [
    # start_ms, end_ms, src, sport, dst, dport, proto, bytes, packets
    (1767324720123, 1767324721627, "10.1.2.30", 51514, "203.0.113.7", 443, 6, 989, 9),
    (1767324721500, 1767324721521, "10.1.2.30", 55011, "198.51.100.53", 53, 17, 61, 1),
    (1767324722000, 1767324722000, "10.1.2.31", 49152, "192.0.2.80", 8080, 6, 60, 1),
    (1767324723250, 1767324723250, "2001:db8:10::30", 128, "2001:db8:ff::1", 129, 58, 64, 1),
]


def assert_expected(rows: dict[int, dict[str, int]], index: int, expected: tuple[Any, ...]) -> None:
    start, end, src, sport, dst, dport, proto, nbytes, packets = expected
    row = rows[index]
    assert (row["start_ms"], row["end_ms"]) == (start, end)
    assert (row["src_hi"], row["src_lo"]) == ip_to_halves(src)
    assert (row["dst_hi"], row["dst_lo"]) == ip_to_halves(dst)
    assert (row["src_port"], row["dst_port"], row["proto"]) == (sport, dport, proto)
    assert (row["bytes"], row["packets"], row["sampling_rate"]) == (nbytes, packets, 1)


def test_registry_builds_the_zeek_decoders() -> None:
    assert isinstance(get_decoder("zeek-json"), ZeekJsonDecoder)
    assert isinstance(get_decoder("zeek-tsv"), ZeekTsvDecoder)


def test_json_fixture_values() -> None:
    result = JSON_DECODER.decode(JSON_RECORDS)
    assert result.rejections == []
    rows = table(result)
    for index, expected in enumerate(EXPECTED):
        assert_expected(rows, index, expected)
    # json-streaming-logs record with an ISO 8601 ts; duration 0.254115... s
    assert rows[4]["start_ms"] == 1767324724100 and rows[4]["end_ms"] == 1767324724354
    assert rows[4]["bytes"] == 397
    # Kafka-tagged {"conn": {...}} and a JSON::TS_MILLIS record
    assert (rows[5]["start_ms"], rows[5]["end_ms"], rows[5]["dst_port"]) == (
        1767324725750, 1767324728750, 1177,
    )  # fmt: skip
    assert (rows[6]["start_ms"], rows[6]["end_ms"]) == (1767324726000, 1767324738500)


def test_tsv_fixture_values_match_json() -> None:
    log = read_zeek_log(FIXTURES / "conn.log")
    assert log.header.path == "conn" and log.header.fields[-2:] == ("label", "detailedlabel")
    assert log.line_numbers == [9, 10, 11, 12]  # #close footer skipped
    result = ZeekTsvDecoder(log.header).decode(log.records)
    assert result.rejections == []
    rows = table(result)
    for index, expected in enumerate(EXPECTED):
        assert_expected(rows, index, expected)
    assert read_zeek_labels(FIXTURES / "conn.log") == [
        "Malicious",
        "Benign",
        "Background",
        "Benign",
    ]
    assert read_zeek_labels(FIXTURES / "conn.log", "detailedlabel") == ["C&C", "", "", ""]


def test_csv_fixture_values() -> None:
    log = read_zeek_log(FIXTURES / "conn.csv")
    assert log.header.csv and log.header.separator == b","
    result = ZeekTsvDecoder(log.header).decode(log.records)
    assert result.rejections == []
    rows = table(result)
    for index, expected in enumerate(EXPECTED[:3]):
        start, end, *rest = expected
        whole = start // 1000 * 1000  # ts in whole seconds here
        assert_expected(rows, index, (whole, whole + (end - start), *rest))
    assert read_zeek_labels(FIXTURES / "conn.csv") == ["Malicious", "benign", "benign"]
    assert read_zeek_labels(FIXTURES / "conn.csv", "detailedlabel") == ["C&C", "", ""]


def test_quoted_csv_cells_and_gzip(tmp_path: Path) -> None:
    text = (FIXTURES / "conn.csv").read_text().replace(",tcp,,1.504321", ',tcp,"ssl,http",1.504321')
    path = tmp_path / "conn.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    log = read_zeek_log(path)
    result = ZeekTsvDecoder(log.header).decode(log.records)
    assert result.rejections == [] and len(result.flows) == 3
    assert read_zeek_column(log, "service")[0] == "ssl,http"


def test_header_parsing_variants() -> None:
    plain = ZeekHeader.parse([b"ts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto"])
    assert plain.separator == b"\t" and plain.fields[2] == "id.orig_h" and not plain.csv
    assert ZeekHeader.parse([]) == ZeekHeader()
    assert ZeekHeader.is_header_line(b"#separator \\x09")
    assert ZeekHeader.is_header_line(b"\xef\xbb\xbfts,uid,id.orig_h,id.orig_p")
    assert not ZeekHeader.is_header_line(b"1540469303,CGm6,192.168.1.132,58687")
    odd = ZeekHeader.parse(
        [b"#separator \\x7c", b"#unset_field|?", b"#fields|ts|id.orig_h|id.resp_h|id.resp_p|proto"]
    )
    assert odd.separator == b"|" and odd.unset_field == b"?"
    result = ZeekTsvDecoder(odd).decode(
        [b"10.5|10.0.0.1|10.0.0.2|80|tcp", b"?|10.0.0.1|10.0.0.2|80|tcp"]
    )
    assert table(result)[0]["start_ms"] == 10500
    assert [(r.record_index, r.reason) for r in result.rejections] == [
        (1, RejectReason.MISSING_FIELD)
    ]


def test_headerless_lines_use_the_default_conn_columns() -> None:
    line = (FIXTURES / "conn.log").read_bytes().splitlines()[8]
    cut = b"\t".join(line.split(b"\t")[:21])  # default columns only: no label columns
    rows = table(ZeekTsvDecoder().decode([cut]))
    assert_expected(rows, 0, EXPECTED[0])


def test_header_without_a_required_column_rejects_every_record() -> None:
    decoder = ZeekTsvDecoder(ZeekHeader(fields=("ts", "id.orig_h", "id.resp_h", "proto")))
    result = decoder.decode([b"1\t10.0.0.1\t10.0.0.2\ttcp"] * 2)
    assert len(result.flows) == 0
    assert {(r.reason, r.detail) for r in result.rejections} == {
        (RejectReason.MISSING_FIELD, "header has no column id.resp_p")
    }
    dns = ZeekTsvDecoder(ZeekHeader(path="dns")).decode([b"x"])
    assert dns.rejections[0].reason == RejectReason.INVALID_FIELD


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ts": None}, RejectReason.MISSING_FIELD),
        ({"ts": -1.0}, RejectReason.INVALID_FIELD),
        ({"ts": "yesterday"}, RejectReason.INVALID_FIELD),
        ({"ts": 1e300}, RejectReason.INVALID_FIELD),
        ({"ts": True}, RejectReason.INVALID_FIELD),
        ({"id.orig_h": "10.0.0.256"}, RejectReason.INVALID_ADDRESS),
        ({"id.resp_h": "fe80::1%eth0"}, RejectReason.INVALID_ADDRESS),
        ({"id.resp_h": 167772161}, RejectReason.INVALID_FIELD),
        ({"id.orig_h": None}, RejectReason.MISSING_FIELD),
        ({"id.resp_p": 65536}, RejectReason.INVALID_FIELD),
        ({"id.resp_p": 443.0}, RejectReason.INVALID_FIELD),
        ({"id.resp_p": None}, RejectReason.MISSING_FIELD),
        ({"proto": "sctp"}, RejectReason.INVALID_FIELD),
        ({"proto": "unknown_transport"}, RejectReason.INVALID_FIELD),
        ({"duration": -0.5}, RejectReason.INVALID_FIELD),
        ({"orig_ip_bytes": -1}, RejectReason.INVALID_FIELD),
        ({"orig_pkts": 2**64}, RejectReason.INVALID_FIELD),
        ({"_path": "dns"}, RejectReason.INVALID_FIELD),
    ],
)
def test_json_field_rules(change: dict[str, Any], reason: str) -> None:
    obj = orjson.loads(JSON_RECORDS[0])
    for key, value in change.items():
        if value is None:
            del obj[key]
        else:
            obj[key] = value
    record = orjson.dumps(obj) if change.get("orig_pkts") != 2**64 else _big_int_record(obj)
    result = JSON_DECODER.decode([record])
    assert len(result.flows) == 0
    assert result.rejections[0].reason == reason, result.rejections


def _big_int_record(obj: dict[str, Any]) -> bytes:
    obj = dict(obj, orig_pkts=0)
    return orjson.dumps(obj).replace(b'"orig_pkts":0', b'"orig_pkts":18446744073709551616')


def test_json_unset_and_alternative_shapes() -> None:
    obj = orjson.loads(JSON_RECORDS[0])
    nulls = dict(obj, duration=None, orig_ip_bytes=None, service=None)  # json_include_unset_fields
    nested = {k: v for k, v in obj.items() if not k.startswith("id.")}
    nested["id"] = {"orig_h": "10.1.2.30", "orig_p": 51514, "resp_h": "203.0.113.7", "resp_p": 443}
    unknown = dict(obj, proto="unknown_transport", ip_proto=47)
    result = JSON_DECODER.decode([orjson.dumps(nulls), orjson.dumps(nested), orjson.dumps(unknown)])
    assert result.rejections == []
    rows = table(result)
    assert rows[0]["end_ms"] == rows[0]["start_ms"] and rows[0]["bytes"] == 517  # orig_bytes
    assert rows[1] == table(JSON_DECODER.decode(JSON_RECORDS[:1]))[0]
    assert rows[2]["proto"] == 47
    tagged_dns = orjson.dumps({"dns": obj})
    assert JSON_DECODER.decode([tagged_dns]).rejections[0].reason == RejectReason.INVALID_FIELD


def test_json_bad_records() -> None:
    records = [b"{not json", b"[1,2]", b'{"ts": NaN}', b"\xff\xfe{}", b"x" * 70_000, b"null"]
    result = JSON_DECODER.decode(records)
    assert [r.reason for r in result.rejections] == [
        RejectReason.INVALID_JSON, RejectReason.NOT_AN_OBJECT, RejectReason.INVALID_FIELD,
        RejectReason.INVALID_UTF8, RejectReason.OVERSIZED, RejectReason.NOT_AN_OBJECT,
    ]  # fmt: skip


def test_tsv_bad_lines() -> None:
    good = (FIXTURES / "conn.log").read_bytes().splitlines()[8]
    cells = good.split(b"\t")

    def line(i: int, value: bytes) -> bytes:
        return b"\t".join([*cells[:i], value, *cells[i + 1 :]])

    header = read_zeek_log(FIXTURES / "conn.log").header
    records = [
        line(0, b"-"), line(0, b"-1.5"), line(0, b"1e5x"), line(2, b"10.1.2"), line(5, b"99999"),
        line(6, b"gre"), line(8, b"NaN"), line(17, b"12a"), good[:40], b"#close\t2026",
        good + b"\xff", line(0, b"2026-01-02T03:32:00.5Z"), b"x" * 70_000,
    ]  # fmt: skip
    result = ZeekTsvDecoder(header).decode(records)
    check_invariant(result, len(records))
    reasons = {r.record_index: r.reason for r in result.rejections}
    assert reasons == {
        0: RejectReason.MISSING_FIELD, 1: RejectReason.INVALID_FIELD, 2: RejectReason.INVALID_FIELD,
        3: RejectReason.INVALID_ADDRESS, 4: RejectReason.INVALID_FIELD,
        5: RejectReason.INVALID_FIELD, 6: RejectReason.INVALID_FIELD,
        7: RejectReason.INVALID_FIELD, 8: RejectReason.INVALID_FIELD,
        9: RejectReason.INVALID_FIELD, 10: RejectReason.INVALID_UTF8, 12: RejectReason.OVERSIZED,
    }  # fmt: skip
    assert table(result)[11]["start_ms"] == 1767324720500  # an ISO time is read too


def test_iso_times() -> None:
    assert iso_to_ms("2026-01-02T03:32:04.100200Z") == 1767324724100
    assert iso_to_ms("2026-01-02T05:32:04.1+02:00") == 1767324724100
    assert iso_to_ms("2026-01-02 03:32:04") == 1767324724000
    assert iso_to_ms("2026-13-02T03:32:04Z") is None
    assert iso_to_ms("1767324724") is None


def test_real_stratosphere_and_iot23_files_decode_completely() -> None:
    for path, count in ((NJRAT, 992), (BENIGN, 5663), (HUE, 452)):
        log = read_zeek_log(path)
        result = ZeekTsvDecoder(log.header).decode(log.records)
        assert result.rejections == [], (path, result.rejections[:3])
        assert len(result.flows) == len(log.records) == count
        assert len(read_zeek_labels(path)) == count
    njrat = read_zeek_log(NJRAT)
    labels = read_zeek_labels(NJRAT)
    flows = ZeekTsvDecoder(njrat.header).decode(njrat.records).flows
    c2_hi, c2_lo = ip_to_halves("41.108.179.197")
    c2 = (flows.dst_lo == c2_lo) & (flows.dst_hi == c2_hi) & (flows.dst_port == 1177)
    assert int(c2.sum()) >= 200
    assert {labels[i] for i in flows.record_index[c2]} == {"Malicious"}
    assert int(flows.start_ms.min()) < 3_600_000  # NjRAT ts counts from capture start


# --- hostile input ---------------------------------------------------------------------------

_json_values = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False),
    st.sampled_from([2**63, 2**64 - 1, -1, 0, 65536, 1e20, 1.5, "1.2.3.4", "::1", "tcp", "icmp",
                     "2026-01-02T03:32:04Z", "", "\udcff", [], {}, {"orig_h": "1.2.3.4"}]),
    st.text(max_size=12),
)  # fmt: skip
_FIELDS = ["ts", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p", "proto", "duration",
           "orig_bytes", "orig_ip_bytes", "orig_pkts", "_path", "ip_proto"]  # fmt: skip
_good_obj = orjson.loads(JSON_RECORDS[0])


@st.composite
def mutated_json(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=200))
    record = orjson.dumps(_good_obj)
    if kind == 1:
        return record[: draw(st.integers(0, len(record)))]
    obj = dict(_good_obj)
    for key in draw(st.lists(st.sampled_from(_FIELDS), max_size=4)):
        if draw(st.booleans()):
            obj.pop(key, None)
        else:
            obj[key] = draw(_json_values)
    try:
        return orjson.dumps(obj)
    except TypeError:  # integers beyond 64 bits: write them by hand
        return json.dumps(obj).encode()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_json(), min_size=1, max_size=8))
def test_json_hostile_input_never_raises(records: list[bytes]) -> None:
    result = JSON_DECODER.decode(records)
    check_invariant(result, len(records))
    _check_values(JSON_DECODER, records, result)


_TSV_GOOD = (FIXTURES / "conn.log").read_bytes().splitlines()[8].split(b"\t")
_TSV_HEADER = read_zeek_log(FIXTURES / "conn.log").header
_TSV_DECODER = ZeekTsvDecoder(_TSV_HEADER)
_cells = st.one_of(
    st.binary(max_size=12), st.sampled_from([b"-", b"(empty)", b"", b"NaN", b"inf", b"-0", b"1e999",
    b"99999999999999999999999", b"::1", b"256.1.1.1", b"\xc3\x28", b"1.5", b" 1", b"+1"]),
)  # fmt: skip


@st.composite
def mutated_tsv(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.binary(max_size=200))
    cells = list(_TSV_GOOD)
    if kind == 1:
        line = b"\t".join(cells)
        return line[: draw(st.integers(0, len(line)))]
    for i in draw(st.lists(st.integers(0, len(cells) - 1), max_size=4)):
        cells[i] = draw(_cells)
    return b"\t".join(cells)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_tsv(), min_size=1, max_size=8))
def test_tsv_hostile_input_never_raises(records: list[bytes]) -> None:
    result = _TSV_DECODER.decode(records)
    check_invariant(result, len(records))
    _check_values(_TSV_DECODER, records, result)


def _check_values(decoder: Decoder, records: list[bytes], result: DecodeResult) -> None:
    """Decoded rows are in range, and decoding a record alone gives the same row."""
    f = result.flows
    assert (f.end_ms >= f.start_ms).all() and (f.start_ms >= 0).all()
    rows = table(result)
    for index, row in rows.items():
        assert table(decoder.decode([records[index]]))[0] == row
        assert not math.isnan(row["start_ms"])
