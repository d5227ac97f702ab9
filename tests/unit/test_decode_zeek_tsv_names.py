"""Zeek TSV ssl.log / http.log (`decode.zeek.zeek_tsv`): the same name annotations as the JSON
decoder's (tests/unit/test_decode_zeek_names.py), from the headers Zeek 6/7 write."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from beaconwatch.alerting.alert import CHANNEL_NAME
from beaconwatch.cli import main
from beaconwatch.config import Config
from beaconwatch.core.detector import Detector
from beaconwatch.decode.zeek.zeek_json import ZeekJsonDecoder
from beaconwatch.decode.zeek.zeek_tsv import ZeekHeader, ZeekTsvDecoder, read_zeek_log
from beaconwatch.domain.addresses import ip_to_halves
from beaconwatch.domain.flows import FLOW_COLUMNS
from beaconwatch.domain.names import name_hash
from beaconwatch.domain.rejections import RejectReason
from beaconwatch.simulate.encoders import zeek_tsv
from tests.unit.flowgen import WALL_MS
from tests.unit.test_decode_zeek import check_invariant
from tests.unit.test_decode_zeek_names import C2, cdn_conns

FIXTURES = Path(__file__).parent.parent / "fixtures" / "zeek"
SSL = read_zeek_log(FIXTURES / "ssl.log")
HTTP = read_zeek_log(FIXTURES / "http.log")
SSL_DECODER = ZeekTsvDecoder(SSL.header)
HTTP_DECODER = ZeekTsvDecoder(HTTP.header)
SSL_FIELDS = SSL.header.fields
HTTP_FIELDS = HTTP.header.fields


def ssl_line(src: str, dst: str, name: str, ts: str = "1767324720.100000", **cells: str) -> bytes:
    """A data line of the ssl.log fixture's columns (Zeek 6/7 defaults)."""
    values = {"ts": ts, "uid": "CzW3Jb1Kq9x2Hh0Fd4", "id.orig_h": src, "id.orig_p": "51514",
              "id.resp_h": dst, "id.resp_p": "443", "version": "TLSv13", "server_name": name,
              "established": "T", **cells}  # fmt: skip
    return "\t".join(values.get(f, "-") for f in SSL_FIELDS).encode()


def http_line(src: str, dst: str, host: str) -> bytes:
    values = {"ts": "1767324720.500000", "uid": "C1", "id.orig_h": src, "id.orig_p": "40000",
              "id.resp_h": dst, "id.resp_p": "80", "method": "GET", "host": host, "uri": "/",
              "tags": "(empty)"}  # fmt: skip
    return "\t".join(values.get(f, "-") for f in HTTP_FIELDS).encode()


def test_the_headers_are_read_as_zeek_writes_them() -> None:
    assert SSL.header.path == "ssl" and HTTP.header.path == "http"
    assert SSL_FIELDS[9] == "server_name" and HTTP_FIELDS[8] == "host"
    assert len(SSL.records) == 3 and len(HTTP.records) == 3  # #close is no record


def test_ssl_and_http_logs_are_annotation_rows_with_their_names() -> None:
    ssl = SSL_DECODER.decode(SSL.records)
    http = HTTP_DECODER.decode(HTTP.records)
    assert ssl.rejections == [] and http.rejections == []
    # ssl: the second record has no SNI (-); http: an IP literal and an unset host give nothing.
    assert ssl.flows.record_index.tolist() == [0, 2] and http.flows.record_index.tolist() == [0]
    names = ["c2.example.net", "v6.example.org", "updates.example.com"]
    flows = [ssl.flows, http.flows]
    assert [h for f in flows for h in f.name_hash.tolist()] == [name_hash(n) for n in names]
    assert [f.names[h] for f in flows for h in f.name_hash.tolist()] == names
    assert all(f.annotation.all() and not f.bytes.any() and not f.packets.any() for f in flows)
    assert (ssl.flows.src_hi[0], ssl.flows.src_lo[0]) == ip_to_halves("10.1.2.30")
    assert (ssl.flows.dst_hi[1], ssl.flows.dst_lo[1]) == ip_to_halves("2001:db8:ff::1")
    assert http.flows.dst_port.tolist() == [8080]
    assert ssl.flows.start_ms.tolist() == [1767324720181, 1767324723250]


def test_tsv_and_json_records_of_the_same_connections_decode_alike() -> None:
    cases = [("10.1.2.30", "203.0.113.7", "C2.Example.NET."), ("10.1.2.31", "2001:db8::7", "a.b")]
    tsv = SSL_DECODER.decode([ssl_line(s, d, n, ts="1767324720.123456") for s, d, n in cases])
    records = [
        json.dumps({"ts": 1767324720.123456, "uid": "CzW3Jb1Kq9x2Hh0Fd4", "id.orig_h": s,
                    "id.orig_p": 51514, "id.resp_h": d, "id.resp_p": 443, "server_name": n,
                    "_path": "ssl"}).encode()
        for s, d, n in cases
    ]  # fmt: skip
    js = ZeekJsonDecoder().decode(records)
    for column in FLOW_COLUMNS:
        assert np.array_equal(getattr(tsv.flows, column), getattr(js.flows, column)), column
    assert dict(tsv.flows.names) == dict(js.flows.names)


def test_records_without_a_usable_name_give_nothing_and_are_not_rejected() -> None:
    ssl = [
        ssl_line("10.1.2.30", "203.0.113.7", "-"),  # no SNI
        ssl_line("10.1.2.30", "203.0.113.7", "(empty)"),
        ssl_line("10.1.2.30", "203.0.113.7", "x" * 300),  # over-long
        ssl_line("10.1.2.30", "203.0.113.7", "bad name.example"),
        ssl_line("10.1.2.30", "203.0.113.7", "tab\\x09name.example"),  # Zeek's escape of a tab
        ssl_line("10.1.2.30", "203.0.113.7", "\\xff\\xfe.example"),  # escapes of no UTF-8
        ssl_line("10.1.2.30", "203.0.113.7", "203.0.113.7"),  # an IP literal is no name
    ]
    http = [
        http_line("10.1.2.30", "198.51.100.9", "198.51.100.9:80"),
        http_line("10.1.2.30", "198.51.100.9", "[2001:db8::1]:80"),
        http_line("10.1.2.30", "198.51.100.9", "-"),
    ]
    for decoder, records in ((SSL_DECODER, ssl), (HTTP_DECODER, http)):
        result = decoder.decode(records)
        assert result.rejections == [] and len(result.flows) == 0


def test_an_escaped_character_is_read_as_what_it_spells() -> None:
    result = SSL_DECODER.decode([ssl_line("10.1.2.30", "203.0.113.7", "caf\\xc3\\xa9.example")])
    assert list(result.flows.names.values()) == ["café.example"]


def test_hostile_annotations_are_rejected_like_conn_records() -> None:
    good = ssl_line("10.1.2.30", "203.0.113.7", "ok.example")
    records = [
        ssl_line("10.1.2.x", "203.0.113.7", "a.example"),
        ssl_line("10.1.2.30", "203.0.113.7", "a.example", ts="yesterday"),
        ssl_line("10.1.2.30", "203.0.113.7", "zz.example").replace(b"zz", b"\xff\xfe"),
        good.rsplit(b"\t", 1)[0],  # a column short
        ssl_line("10.1.2.30", "203.0.113.7", "a.example", **{"id.resp_p": "70000"}),
        ssl_line("10.1.2.30", "-", "a.example"),
        b"#close\t2026-01-02-03-33-00",
        good,
    ]
    result = SSL_DECODER.decode(records)
    assert sorted((r.record_index, r.reason) for r in result.rejections) == [
        (0, RejectReason.INVALID_ADDRESS), (1, RejectReason.INVALID_FIELD),
        (2, RejectReason.INVALID_UTF8), (3, RejectReason.INVALID_FIELD),
        (4, RejectReason.INVALID_FIELD), (5, RejectReason.MISSING_FIELD),
        (6, RejectReason.INVALID_FIELD),
    ]  # fmt: skip
    assert result.flows.record_index.tolist() == [7]


def test_other_logs_and_headers_without_the_name_are_refused() -> None:
    lines = (FIXTURES / "ssl.log").read_bytes().splitlines()[:8]
    dns = ZeekTsvDecoder(ZeekHeader.parse([b"#path\tdns" if b"#path" in x else x for x in lines]))
    result = dns.decode(SSL.records)
    assert {r.reason for r in result.rejections} == {RejectReason.INVALID_FIELD}
    assert "not a conn, ssl or http log" in result.rejections[0].detail
    no_name = [x.replace(b"\tserver_name", b"\tsni") for x in lines]
    result = ZeekTsvDecoder(ZeekHeader.parse(no_name)).decode(SSL.records)
    assert [r.reason for r in result.rejections] == [RejectReason.MISSING_FIELD] * 3
    assert "server_name" in result.rejections[0].detail


_GOOD = ssl_line("10.1.2.30", "203.0.113.7", "ok.example").split(b"\t")
_cells = st.one_of(
    st.binary(max_size=12), st.sampled_from([b"-", b"(empty)", b"", b"\\x", b"\\x0", b"\\x00",
    b"\\xzz", b"[::1]:1", b"a:b:c", b"1.2.3.4:", b"x" * 260, b"\xc3\x28", b"::1", b"65536"]),
)  # fmt: skip


@st.composite
def mutated_ssl(draw: st.DrawFn) -> bytes:
    cells = list(_GOOD)
    if draw(st.booleans()):
        line = b"\t".join(cells)
        return line[: draw(st.integers(0, len(line)))]
    for i in draw(st.lists(st.sampled_from([0, 2, 3, 4, 5, 9]), max_size=4)):
        cells[i] = draw(_cells)
    return b"\t".join(cells)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(mutated_ssl(), min_size=1, max_size=8))
def test_hostile_ssl_lines_never_raise(records: list[bytes]) -> None:
    result = SSL_DECODER.decode(records)
    # An annotation is a row or nothing (no usable name), never both a row and a rejection.
    decoded = result.flows.record_index.tolist()
    rejected = [r.record_index for r in result.rejections]
    assert not set(decoded) & set(rejected) and len(set(decoded)) == len(decoded)
    assert result.flows.annotation.all() and (result.flows.name_hash != 0).all()
    for k, index in enumerate(decoded):  # each row as the record decodes alone
        alone = SSL_DECODER.decode([records[index]]).flows
        assert alone.name_hash.tolist() == [result.flows.name_hash[k]]


def test_ssl_log_lines_name_the_conn_log_lines_of_their_pair() -> None:
    conns = cdn_conns("10.0.0.5")
    conn_decoder = ZeekTsvDecoder(read_zeek_log(FIXTURES / "conn.log").header)
    default_conn = ZeekTsvDecoder()  # zeek_tsv writes the default conn.log columns
    assert conn_decoder.header.path == "conn"
    notes = [ssl_line(c.src_ip, c.dst_ip, C2, ts=f"{c.start_ms / 1000:.6f}") for c in conns]
    lines = zeek_tsv(conns)
    det = Detector(Config(), wall_clock_ms=lambda: WALL_MS)
    alerts, accepted = [], 0
    for i in range(0, len(conns), 20):  # scan reads each file with its own header
        result = det.process(SSL_DECODER.decode(notes[i : i + 20]).flows)
        alerts += result.alerts
        result = det.process(default_conn.decode(lines[i : i + 20]).flows)
        alerts += result.alerts
        accepted += result.flows_accepted
    assert accepted == len(conns)
    assert [(a.channel, a.dst_domain) for a in alerts if a.lifecycle == "new"] == [
        (CHANNEL_NAME, C2)
    ]
    check_invariant(SSL_DECODER.decode(notes), len(notes))


def test_scan_of_an_ssl_log_and_its_conn_log_names_the_c2(tmp_path: Path) -> None:
    conns = cdn_conns("10.0.0.5")
    header = (FIXTURES / "ssl.log").read_bytes().splitlines()[:8]
    notes = [ssl_line(c.src_ip, c.dst_ip, C2, ts=f"{c.start_ms / 1000:.6f}") for c in conns]
    (tmp_path / "ssl.log").write_bytes(b"\n".join([*header, *notes]) + b"\n")
    # zeek_tsv writes the default conn.log columns: a headerless file of them.
    (tmp_path / "conn.log").write_bytes(b"\n".join(zeek_tsv(conns)) + b"\n")
    out, rejects = tmp_path / "alerts.jsonl", tmp_path / "rejects.jsonl"
    args = ["scan", "--quiet", "--format", "zeek-tsv", "--output", str(out),
            "--rejects", str(rejects)]  # fmt: skip
    assert main([*args, str(tmp_path / "ssl.log"), str(tmp_path / "conn.log")]) == 0
    docs = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [(d["beacon"]["channel"], d["destination"]["domain"]) for d in docs] == [("name", C2)]
    assert rejects.read_bytes() == b""
