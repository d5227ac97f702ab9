"""Decode throughput of the goflow2 JSON decoder on realistic full-size records.

Builds a batch of goflow2-shaped records (~970 bytes each, all fields, ~20% IPv6, TCP/UDP/ICMP)
from the test fixtures with varied addresses, ports, times and counters, then decodes it
repeatedly on one core and prints the median rate. For comparison it also times plain
``orjson.loads`` per record (no validation, no columns), then the same flows in every other
input format (written by ``beaconwatch.simulate.encoders``).

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

from beaconwatch.decode.base import Decoder
from beaconwatch.decode.registry import get_decoder
from beaconwatch.decode.scan.goflow2_json import Goflow2JsonDecoder
from beaconwatch.simulate import encoders
from beaconwatch.simulate.model import SimFlow

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
    bench_other_formats(records, args.runs)


def sim_flow(g: dict[str, Any]) -> SimFlow:
    """A goflow2 JSON record as the simulator's flow (times floored to ms; sFlow: receive time)."""
    start_ns = g["time_flow_start_ns"] or g["time_received_ns"]
    end_ns = max(g["time_flow_end_ns"], start_ns)
    return SimFlow(
        start_ns // 1_000_000, end_ns // 1_000_000, g["src_addr"], g["dst_addr"],
        g["src_port"], g["dst_port"], g["proto"], g["bytes"], g["packets"],
    )  # fmt: skip


def time_decode(name: str, decoder: Decoder, batch: list[bytes], flows: int, runs: int) -> None:
    result = decoder.decode(batch)
    assert not result.rejections and len(result.flows) == flows, (name, result.rejections[:2])
    seconds = []
    for _ in range(runs):
        t = time.perf_counter()
        decoder.decode(batch)
        seconds.append(time.perf_counter() - t)
    size = sum(map(len, batch)) / len(batch)
    flows_s = flows / statistics.median(seconds)
    print(f"{name} decode: {flows_s:,.0f} flows/s ({len(batch)} records of {size:.0f} bytes)")


def bench_other_formats(goflow2_records: list[bytes], runs: int) -> None:
    """The same varied flows in every other input format, written by the shared encoders
    (``beaconwatch.simulate.encoders``): goflow2-pb (every field of the JSON records, as
    goflow2 ``-format=bin`` writes them), pmacct-json (5 objects per Kafka record,
    ``kafka_multi_values``), ecs-json (one Filebeat document per record), zeek-json and
    zeek-tsv (one conn.log entry per record; protocols Zeek cannot name logged as tcp)."""
    dicts = [orjson.loads(raw) for raw in goflow2_records]
    flows = [sim_flow(g) for g in dicts]
    zeek_flows = [
        f if f.proto in ("TCP", "UDP", "ICMP", "ICMPv6", "IPv6-ICMP") else f._replace(proto="TCP")
        for f in flows
    ]
    pb = encoders.Goflow2PbEncoder()
    n = len(flows)
    batches: list[tuple[str, str, list[bytes]]] = [
        ("goflow2-pb", "goflow2-pb", [pb.from_json_record(g) for g in dicts]),
        ("pmacct-json", "pmacct-json", encoders.pmacct_json(flows, objects_per_record=5)),
        ("ecs-json", "ecs-json", encoders.ecs_json(flows)),
        ("zeek-json", "zeek-json", encoders.zeek_json(zeek_flows)),
        ("zeek-tsv", "zeek-tsv", encoders.zeek_tsv(zeek_flows)),
        ("auto (zeek-json)", "auto", encoders.zeek_json(zeek_flows)),
    ]
    for label, name, batch in batches:
        time_decode(label, get_decoder(name), batch, n, runs)


if __name__ == "__main__":
    main()
