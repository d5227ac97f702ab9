"""Zeek ssl.log / http.log records as name annotations (`decode.zeek.zeek_json`,
`state.name_notes`): they name the pair's conn records and are never counted as flows."""

from __future__ import annotations

import json

import numpy as np

from beaconwatch.alerting.alert import CHANNEL_NAME
from beaconwatch.config import Config
from beaconwatch.core.detector import Detector
from beaconwatch.decode.zeek.zeek_json import ZeekJsonDecoder
from beaconwatch.domain.addresses import ip_to_halves
from beaconwatch.domain.names import name_hash
from beaconwatch.domain.rejections import RejectReason
from beaconwatch.simulate.encoders import zeek_json
from beaconwatch.simulate.model import SimFlow
from tests.unit.flowgen import T0_MS, WALL_MS
from tests.unit.test_name_channels import edges

DECODER = ZeekJsonDecoder()
C2 = "cdn-c2.example.net"


def ssl(src: str, dst: str, name: object, ts_s: float = 1767324720.1, **extra: object) -> bytes:
    record = {"ts": ts_s, "uid": "CzW3Jb1Kq9x2Hh0Fd4", "id.orig_h": src, "id.orig_p": 51514,
              "id.resp_h": dst, "id.resp_p": 443, "version": "TLSv13", "server_name": name,
              "established": True, "_path": "ssl", **extra}  # fmt: skip
    if name is None:
        del record["server_name"]
    return json.dumps(record).encode()


def http(src: str, dst: str, host: str) -> bytes:
    return json.dumps({"ts": 1767324720.5, "uid": "C1", "id.orig_h": src, "id.orig_p": 40000,
                       "id.resp_h": dst, "id.resp_p": 80, "method": "GET", "host": host,
                       "uri": "/", "_path": "http"}).encode()  # fmt: skip


def test_ssl_and_http_records_are_annotation_rows_with_their_names() -> None:
    records = [
        ssl("10.1.2.30", "203.0.113.7", "C2.Example.NET."),
        http("10.1.2.30", "198.51.100.9", "Updates.example.com:8080"),
        json.dumps({"ssl": json.loads(ssl("10.1.2.31", "203.0.113.8", "tagged.example"))}).encode(),
    ]
    result = DECODER.decode(records)
    assert result.rejections == []
    flows = result.flows
    assert flows.annotation.tolist() == [1, 1, 1]
    names = ["c2.example.net", "updates.example.com", "tagged.example"]
    assert flows.name_hash.tolist() == [name_hash(n) for n in names]
    assert [flows.names[h] for h in flows.name_hash.tolist()] == names
    assert (flows.src_hi[0], flows.src_lo[0]) == ip_to_halves("10.1.2.30")
    assert (flows.dst_hi[1], flows.dst_lo[1]) == ip_to_halves("198.51.100.9")
    assert flows.packets.tolist() == [0, 0, 0] and flows.bytes.tolist() == [0, 0, 0]


def test_records_without_a_usable_name_give_nothing_and_are_not_rejected() -> None:
    records = [
        ssl("10.1.2.30", "203.0.113.7", None),  # no SNI
        ssl("10.1.2.30", "203.0.113.7", ""),
        ssl("10.1.2.30", "203.0.113.7", "x" * 300),  # over-long
        ssl("10.1.2.30", "203.0.113.7", 12),  # not a string
        ssl("10.1.2.30", "203.0.113.7", "bad name.example"),
        http("10.1.2.30", "198.51.100.9", "198.51.100.9:80"),  # an IP literal is no name
        http("10.1.2.30", "198.51.100.9", "[2001:db8::1]:80"),
    ]
    result = DECODER.decode(records)
    assert result.rejections == [] and len(result.flows) == 0


def test_hostile_annotations_are_rejected_like_conn_records() -> None:
    bad_address = ssl("10.1.2.x", "203.0.113.7", "a.example")
    bad_time = ssl("10.1.2.30", "203.0.113.7", "a.example", ts_s="yesterday")  # type: ignore[arg-type]
    not_utf8 = ssl("10.1.2.30", "203.0.113.7", "zz.example").replace(b"zz", b"\xff\xfe")
    good = ssl("10.1.2.30", "203.0.113.7", "ok.example")
    result = DECODER.decode([bad_address, bad_time, not_utf8, good])
    assert sorted((r.record_index, r.reason) for r in result.rejections) == [
        (0, RejectReason.INVALID_ADDRESS), (1, RejectReason.INVALID_FIELD),
        (2, RejectReason.INVALID_UTF8),
    ]  # fmt: skip
    assert result.flows.record_index.tolist() == [3]
    # Other streams are still refused.
    dns = json.dumps({"dns": json.loads(good)}).encode()
    assert DECODER.decode([dns]).rejections[0].reason == RejectReason.INVALID_FIELD


def cdn_conns(src: str, count: int = 60) -> list[SimFlow]:
    """A beacon's conn records, each to another CDN edge (another /24), 60 s apart."""
    ips = edges(200, 1)
    rng = np.random.default_rng(1)
    t = float(T0_MS)
    rows = []
    for n in range(count):
        t += 60_000 * rng.uniform(0.9, 1.1)
        rows.append(SimFlow(int(t), int(t) + 900, src, ips[int(rng.integers(len(ips)))],
                            40_000 + n, 443, "TCP", 1_200, 8))  # fmt: skip
    return rows


def test_ssl_records_name_the_conn_records_of_their_pair_and_are_not_flows() -> None:
    conns = cdn_conns("10.0.0.5")
    # Zeek writes the ssl record at the handshake, the conn record when the connection ends.
    notes = [ssl(c.src_ip, c.dst_ip, C2, ts_s=c.start_ms / 1000) for c in conns]
    records = [r for pair in zip(notes, zeek_json(conns), strict=True) for r in pair]
    det = Detector(Config(), wall_clock_ms=lambda: WALL_MS)
    alerts, accepted = [], 0
    for i in range(0, len(records), 40):
        result = det.process(DECODER.decode(records[i : i + 40]).flows)
        alerts += result.alerts
        accepted += result.flows_accepted
    assert accepted == len(conns)  # annotations are no connections
    assert det.stats.flows_total == len(conns)
    assert [(a.channel, a.dst_domain) for a in alerts if a.lifecycle == "new"] == [
        (CHANNEL_NAME, C2)
    ]
    # The same conn records without their ssl records: nothing ties the edges together.
    det = Detector(Config(), wall_clock_ms=lambda: WALL_MS)
    plain = zeek_json(conns)
    assert not any(
        det.process(DECODER.decode(plain[i : i + 20]).flows).alerts
        for i in range(0, len(plain), 20)
    )
