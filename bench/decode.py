"""Decode throughput of the goflow2 JSON decoder on realistic full-size records.

Builds a batch of goflow2-shaped records (~970 bytes each, all fields, ~20% IPv6, TCP/UDP/ICMP)
from the test fixtures with varied addresses, ports, times and counters, then decodes it
repeatedly on one core and prints the median rate. For comparison it also times plain
``orjson.loads`` per record (no validation, no columns).

    .venv/bin/python bench/decode.py [--records 10000] [--runs 15]
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import statistics
import time
from pathlib import Path
from typing import Any

import orjson

from beaconwatch.decode.goflow2_json import Goflow2JsonDecoder

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "goflow2" / "flows.jsonl"


def make_records(n: int, seed: int = 7) -> list[bytes]:
    rng = random.Random(seed)
    templates: list[dict[str, Any]] = [orjson.loads(line) for line in FIXTURE.read_bytes().split()]
    v4 = [t for t in templates if t["etype"] == "IPv4"]
    v6 = [t for t in templates if t["etype"] == "IPv6" and not t["src_addr"].startswith("::ffff")]
    t0_ns = 1_767_324_720_000_000_000
    records = []
    for k in range(n):
        template = dict(rng.choice(v6 if rng.random() < 0.2 else v4))
        if template["etype"] == "IPv6":
            template["src_addr"] = str(ipaddress.IPv6Address(rng.getrandbits(128)))
            template["dst_addr"] = str(ipaddress.IPv6Address(rng.getrandbits(128)))
        else:
            template["src_addr"] = str(ipaddress.IPv4Address(0x0A00_0000 | rng.getrandbits(24)))
            template["dst_addr"] = str(ipaddress.IPv4Address(rng.getrandbits(32)))
        start_ns = t0_ns + k * 1_000_000 + rng.randrange(1_000_000)
        template["time_received_ns"] = start_ns + rng.randrange(10**9)
        if template["type"] != "SFLOW_5":
            template["time_flow_start_ns"] = start_ns
            template["time_flow_end_ns"] = start_ns + rng.randrange(10**9)
        template["sequence_num"] = k
        template["src_port"] = rng.randrange(1024, 65536)
        template["bytes"] = rng.randrange(40, 10**7)
        template["packets"] = rng.randrange(1, 10**4)
        records.append(orjson.dumps(template))
    return records


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    records = make_records(args.records)
    mean_size = sum(map(len, records)) / len(records)
    decoder = Goflow2JsonDecoder()
    result = decoder.decode(records)
    assert not result.rejections and len(result.flows) == len(records)

    def rate(fn: Any, runs: int) -> float:
        seconds = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - t)
        return len(records) / statistics.median(seconds)

    decode_rate = rate(lambda: decoder.decode(records), args.runs)
    loads_rate = rate(lambda: [orjson.loads(r) for r in records], max(3, args.runs // 3))
    print(f"records/batch: {len(records)}, mean record size: {mean_size:.0f} bytes")
    print(f"goflow2-json decode: {decode_rate:,.0f} flows/s (median of {args.runs} runs)")
    print(f"orjson.loads only:   {loads_rate:,.0f} records/s (reference)")
    bench_pmacct_ecs(records, args.runs)
    bench_goflow2_pb(records, args.runs)
    bench_zeek(records, args.runs)


def bench_pmacct_ecs(goflow2_records: list[bytes], runs: int) -> None:
    """pmacct-json (5 objects per Kafka record, kafka_multi_values) and ecs-json (one nested
    Filebeat document per record), built from the same varied flows as the goflow2 batch."""
    from datetime import UTC, datetime

    from beaconwatch.decode.ecs_json import EcsJsonDecoder
    from beaconwatch.decode.pmacct_json import PmacctJsonDecoder

    fixtures = FIXTURE.parent.parent
    pm_template = orjson.loads(
        (fixtures / "pmacct" / "same_flows.jsonl").read_bytes().split(b"\n")[1]
    )
    ecs_template = orjson.loads(
        (fixtures / "ecs" / "same_flows.jsonl").read_bytes().split(b"\n")[1]
    )

    def text(ns: int, sep: str, zone: str) -> str:
        s, rem = divmod(ns, 10**9)
        return (
            datetime.fromtimestamp(s, UTC).strftime(f"%Y-%m-%d{sep}%H:%M:%S")
            + f".{rem // 1000:06d}{zone}"
        )

    pm_objects, ecs_docs = [], []
    for raw in goflow2_records:
        g = orjson.loads(raw)
        start = g["time_flow_start_ns"] or g["time_received_ns"]
        end = g["time_flow_end_ns"] or start
        pm = dict(
            pm_template,
            ip_src=g["src_addr"],
            ip_dst=g["dst_addr"],
            port_src=g["src_port"],
            port_dst=g["dst_port"],
            ip_proto=g["proto"].lower(),
            bytes=g["bytes"],
            packets=g["packets"],
            timestamp_start=text(start, " ", ""),
            timestamp_end=text(end, " ", ""),
            timestamp_arrival=text(g["time_received_ns"], " ", ""),
        )
        pm_objects.append(orjson.dumps(pm))
        doc = orjson.loads(orjson.dumps(ecs_template))
        doc["source"].update(
            ip=g["src_addr"], port=g["src_port"], bytes=g["bytes"], packets=g["packets"]
        )
        doc["destination"].update(ip=g["dst_addr"], port=g["dst_port"])
        doc["netflow"]["flow_start_milliseconds"] = text(start, "T", "Z")
        doc["netflow"]["flow_end_milliseconds"] = text(end, "T", "Z")
        ecs_docs.append(orjson.dumps(doc))
    pm_records = [b"\n".join(pm_objects[k : k + 5]) + b"\n" for k in range(0, len(pm_objects), 5)]
    for name, decoder, batch in (
        ("pmacct-json", PmacctJsonDecoder(), pm_records),
        ("ecs-json", EcsJsonDecoder(), ecs_docs),
    ):
        result = decoder.decode(batch)
        assert not result.rejections and len(result.flows) == len(goflow2_records), name
        seconds = []
        for _ in range(runs):
            t = time.perf_counter()
            decoder.decode(batch)
            seconds.append(time.perf_counter() - t)
        size = sum(map(len, batch)) / len(batch)
        flows_s = len(goflow2_records) / statistics.median(seconds)
        print(f"{name} decode: {flows_s:,.0f} flows/s ({len(batch)} records of {size:.0f} bytes)")


def bench_goflow2_pb(goflow2_records: list[bytes], runs: int) -> None:
    """goflow2-pb: the same varied flows as goflow2 writes them with ``-format=bin`` (every
    field the JSON records carry, as protobuf values; zeros omitted on the wire)."""
    from beaconwatch.decode.goflow2_pb import Goflow2PbDecoder, delimited
    from beaconwatch.decode.goflow2_pb_schema import FIELDS
    from beaconwatch.decode.protocols import protocol_number

    decoder = Goflow2PbDecoder()
    flow_types = {"SFLOW_5": 1, "NETFLOW_V5": 2, "NETFLOW_V9": 3, "IPFIX": 4}

    def pb_value(name: str, kind: str, value: Any) -> Any:
        if name == "type":
            return flow_types[value]
        if name == "proto":
            return protocol_number(value)
        if name == "etype":
            return {"IPv4": 0x0800, "IPv6": 0x86DD}[value]
        if name in ("src_mac", "dst_mac"):
            return int(value.replace(":", ""), 16)
        if name in ("src_net", "dst_net"):
            return int(value.split("/")[1])
        if kind == "bytes":  # addresses: raw network-order bytes, empty when absent
            return ipaddress.ip_address(value).packed if value else b""
        return value

    batch = []
    for raw in goflow2_records:
        g = orjson.loads(raw)
        fields = {
            f.name: pb_value(f.name, f.type, g[f.name])
            for f in FIELDS
            if f.name in g
            and f.name not in ("layer_stack", "mpls_ip", "ipv6_routing_header_addresses")
        }
        batch.append(delimited(decoder.message_class(**fields).SerializeToString()))
    result = decoder.decode(batch)
    assert not result.rejections and len(result.flows) == len(batch)
    seconds = []
    for _ in range(runs):
        t = time.perf_counter()
        decoder.decode(batch)
        seconds.append(time.perf_counter() - t)
    size = sum(map(len, batch)) / len(batch)
    flows_s = len(batch) / statistics.median(seconds)
    print(f"goflow2-pb decode: {flows_s:,.0f} flows/s ({len(batch)} records of {size:.0f} bytes)")


def bench_zeek(goflow2_records: list[bytes], runs: int) -> None:
    """zeek-json (Zeek's JSON writer, TS_EPOCH) and zeek-tsv (a TSV data line per record,
    default conn.log columns), built from the same varied flows as the goflow2 batch."""
    from beaconwatch.decode.auto import AutoDecoder
    from beaconwatch.decode.zeek_json import ZeekJsonDecoder
    from beaconwatch.decode.zeek_tsv import ZeekTsvDecoder

    conns = []
    for k, raw in enumerate(goflow2_records):
        g = orjson.loads(raw)
        start_ns = g.get("time_flow_start_ns") or g["time_received_ns"]
        proto = {6: "tcp", 17: "udp"}.get(g["proto"] if isinstance(g["proto"], int) else 0)
        proto = proto or str(g["proto"]).lower().replace("icmpv6", "icmp")
        conns.append({
            "ts": round(start_ns / 1e9, 6), "uid": f"C{k:017d}", "id.orig_h": g["src_addr"],
            "id.orig_p": g["src_port"], "id.resp_h": g["dst_addr"], "id.resp_p": g["dst_port"],
            "proto": proto if proto in ("tcp", "udp", "icmp") else "tcp", "service": "ssl",
            "duration": 1.25, "orig_bytes": g["bytes"], "resp_bytes": 4000, "conn_state": "SF",
            "local_orig": True, "local_resp": False, "missed_bytes": 0, "history": "ShADadFf",
            "orig_pkts": g["packets"], "orig_ip_bytes": g["bytes"] + 40, "resp_pkts": 8,
            "resp_ip_bytes": 4400,
        })  # fmt: skip
    json_batch = [orjson.dumps(c) for c in conns]
    tsv_batch = [
        "\t".join(
            f"{v:.6f}" if k == "ts" else ("T" if v is True else "F" if v is False else str(v))
            for k, v in c.items()
        ).encode()
        + b"\t(empty)"
        for c in conns
    ]
    for name, decoder, batch in (
        ("zeek-json", ZeekJsonDecoder(), json_batch),
        ("zeek-tsv", ZeekTsvDecoder(), tsv_batch),
        ("auto (zeek-json)", AutoDecoder(), json_batch),
    ):
        result = decoder.decode(batch)
        assert not result.rejections and len(result.flows) == len(batch), result.rejections[:2]
        seconds = []
        for _ in range(runs):
            t = time.perf_counter()
            decoder.decode(batch)
            seconds.append(time.perf_counter() - t)
        flows_s = len(batch) / statistics.median(seconds)
        size = sum(map(len, batch)) / len(batch)
        print(f"{name} decode: {flows_s:,.0f} flows/s ({len(batch)} records of {size:.0f} bytes)")


if __name__ == "__main__":
    main()
