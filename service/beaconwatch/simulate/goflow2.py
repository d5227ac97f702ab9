"""Encode simulated flows as goflow2 v2 JSON lines (the ``-format json`` output of goflow2)."""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from beaconwatch.simulate.model import PROTO_NUMBERS, SimFlow

NS_PER_MS = 1_000_000
TCP_SYN_ACK_FIN_PSH = 0x1B  # a complete short TCP conversation


def _mac(ip: str) -> str:
    # Stable fake MAC per address (locally administered), so records look like real exports.
    h = zlib.crc32(ip.encode())
    return "02:00:" + ":".join(f"{(h >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))


def pair_key(flow: SimFlow) -> bytes:
    """Kafka record key; same spelling as ``Alert.pair_key`` so a pair stays in one partition."""
    return f"{flow.src_ip}>{flow.dst_ip}:{flow.dst_port}/{PROTO_NUMBERS[flow.proto]}".encode()


def goflow2_record(
    flow: SimFlow, *, sequence_num: int, received_ms: int, sampler_address: str
) -> dict[str, Any]:
    """The full goflow2 v2 JSON object for one flow (IPFIX, unsampled)."""
    is_v6 = ":" in flow.src_ip
    return {
        "type": "IPFIX",
        "time_received_ns": received_ms * NS_PER_MS,
        "sequence_num": sequence_num,
        "sampling_rate": 0,
        "sampler_address": sampler_address,
        "time_flow_start_ns": flow.start_ms * NS_PER_MS,
        "time_flow_end_ns": flow.end_ms * NS_PER_MS,
        "bytes": flow.bytes,
        "packets": flow.packets,
        "src_addr": flow.src_ip,
        "dst_addr": flow.dst_ip,
        "etype": "IPv6" if is_v6 else "IPv4",
        "proto": flow.proto,
        "src_port": flow.src_port,
        "dst_port": flow.dst_port,
        "in_if": 1,
        "out_if": 2,
        "src_mac": _mac(flow.src_ip),
        "dst_mac": "02:00:00:00:00:01",  # the gateway
        "src_vlan": 0,
        "dst_vlan": 0,
        "vlan_id": 0,
        "ip_tos": 0,
        "forwarding_status": 64,  # forwarded
        "ip_ttl": 64,
        "ip_flags": 0,
        "tcp_flags": TCP_SYN_ACK_FIN_PSH if flow.proto == "TCP" else 0,
        "icmp_type": 0,
        "icmp_code": 0,
        "ipv6_flow_label": 0,
        "fragment_id": 0,
        "fragment_offset": 0,
        "src_as": 0,
        "dst_as": 0,
        "next_hop": "::" if is_v6 else "0.0.0.0",
        "next_hop_as": 0,
        "src_net": "::/0" if is_v6 else "0.0.0.0/0",
        "dst_net": "::/0" if is_v6 else "0.0.0.0/0",
        "bgp_next_hop": "",
        "bgp_communities": [],
        "as_path": [],
        "mpls_ttl": [],
        "mpls_label": [],
        "mpls_ip": [],
        "observation_domain_id": 0,
        "observation_point_id": 0,
        "layer_stack": [],
        "layer_size": [],
        "ipv6_routing_header_addresses": [],
        "ipv6_routing_header_seg_left": 0,
    }


def encode(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record)
