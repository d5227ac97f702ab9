"""Simulated flows as Kafka record values in every input format the service decodes.

The decoder registry names each format's encoder here; ``encoder(name)`` finds it.

One encoder per format, each writing the shape the real collector writes (see the decoders'
docstrings and ``tests/fixtures/<format>/SOURCE.md``), from the same `SimFlow`s:

=============  ==============================================================  ===============
format         record value                                                    time precision
=============  ==============================================================  ===============
goflow2-json   goflow2 v2 ``-format=json`` object (``simulate/goflow2.py``)    ns (integers)
goflow2-pb     varint length + ``flowpb.FlowMessage`` (``-format=bin``)         ns (integers)
pmacct-json    nfacctd Kafka plugin object(s), ``timestamps_utc``, one or      us (text)
               several per record (``kafka_multi_values``), ``\\n`` after each
ecs-json       Filebeat ``netflow`` input document (IPFIX: absolute flow times  ms (RFC 3339)
               in ``netflow.flow_{start,end}_milliseconds``)
zeek-json      Zeek conn.log JSON line (``JSON::TS_EPOCH``: ``ts`` and          us (seconds
               ``duration`` in seconds)                                        with 6 digits)
zeek-tsv       Zeek conn.log TSV data line, default columns (for ``scan``)      us
=============  ==============================================================  ===============

Simulated times are whole milliseconds, finer than or equal to every format's precision, so
each encoding carries them exactly and decodes back to the same ``start_ms``/``end_ms``.
Zeek logs a connection, not a flow record: ``bytes`` is written as ``orig_ip_bytes`` (what the
decoder reads) and ``orig_bytes`` is the payload estimate below it.
"""

from __future__ import annotations

import ipaddress
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from beaconwatch.decode.common.protocols import protocol_number
from beaconwatch.decode.registry import ENCODED_FORMATS, SPECS
from beaconwatch.decode.scan.goflow2_pb import delimited
from beaconwatch.decode.scan.goflow2_pb_schema import ENUMS, FIELDS, flow_message_class
from beaconwatch.decode.zeek.zeek_columns import DEFAULT_CONN_FIELDS
from beaconwatch.simulate.goflow2 import goflow2_record
from beaconwatch.simulate.model import SimFlow

SAMPLER_IP = "10.0.255.1"  # the exporter (router) address written into every format
EXPORTER_PORT = 2055

_PB_FLOW_TYPES = dict(ENUMS["FlowType"])
_PB_LAYERS = dict(ENUMS["LayerStack"])
_PB_ADDRESS_LISTS = ("mpls_ip", "ipv6_routing_header_addresses")
_ETHER_TYPES = {"IPv4": 0x0800, "IPv6": 0x86DD}
# pmacct's names (``_protocols`` in pmacct-data.h) of the protocols we write; any other number
# is written as decimal text, as pmacct does with ``*_num_protos``.
_PMACCT_PROTO_NAMES = {6: "tcp", 17: "udp", 1: "icmp", 58: "ipv6-icmp", 47: "gre", 50: "esp"}
_ECS_TRANSPORTS = {6: "tcp", 17: "udp", 1: "icmp", 58: "ipv6-icmp"}
_ZEEK_TRANSPORTS = {6: "tcp", 17: "udp", 1: "icmp", 58: "icmp"}  # Zeek logs ICMPv6 as icmp
_PORTED = (6, 17, 132)  # protocols whose flow records carry transport ports
_ZEEK_SERVICES = {53: "dns", 80: "http", 443: "ssl", 8080: "http", 8443: "ssl"}
_IP_TCP_HEADERS = 40  # IPv4 + TCP header bytes per packet (Zeek's payload estimate)


def proto_number(flow: SimFlow) -> int:
    """IANA number of the flow's protocol (any goflow2 spelling: ``TCP``, ``IPv6-ICMP``, ...)."""
    number = protocol_number(flow.proto)
    if number is None:
        raise ValueError(f"unknown protocol name {flow.proto!r}")
    return number


def received_ms(flow: SimFlow, sequence_num: int) -> int:
    """When the collector received the flow: 0.5-2 s after its end (export delay); the same
    rule the simulator uses, so both write identical goflow2 records."""
    return flow.end_ms + 500 + (sequence_num * 7919) % 1500


def _is_v6(ip: str) -> bool:
    return ":" in ip


def _utc_text(ms: int, *, sep: str = " ", zone: str = "", digits: int = 6) -> str:
    """Epoch ms as ``YYYY-MM-DD<sep>HH:MM:SS.fff...<zone>`` (``digits`` of fraction)."""
    seconds, millis = divmod(ms, 1000)
    base = datetime.fromtimestamp(seconds, UTC).strftime(f"%Y-%m-%d{sep}%H:%M:%S")
    fraction = f"{millis:03d}".ljust(digits, "0")[:digits]
    return f"{base}.{fraction}{zone}" if digits else base + zone


def _go_time(ms: int) -> str:
    """Go ``time.Time`` JSON (RFC 3339, fraction trimmed of trailing zeros, ``Z``)."""
    text = _utc_text(ms, sep="T", digits=3).rstrip("0").rstrip(".")
    return text + "Z"


# -- goflow2 ------------------------------------------------------------------------------------


def _numbered(flows: Sequence[SimFlow], first: int) -> Iterator[tuple[SimFlow, int]]:
    return ((flow, seq) for seq, flow in enumerate(flows, first))


def _goflow2_dict(flow: SimFlow, sequence_num: int) -> dict[str, Any]:
    return goflow2_record(
        flow,
        sequence_num=sequence_num,
        received_ms=received_ms(flow, sequence_num),
        sampler_address=SAMPLER_IP,
    )


def goflow2_json(flows: Sequence[SimFlow], *, first_sequence_num: int = 1) -> list[bytes]:
    """goflow2 v2 JSON records, numbered from ``first_sequence_num``."""
    return [
        orjson.dumps(_goflow2_dict(flow, seq)) for flow, seq in _numbered(flows, first_sequence_num)
    ]


def _packed(text: str) -> bytes:
    return ipaddress.ip_address(text).packed if text else b""


def _pb_value(name: str, value: Any) -> Any:
    """A goflow2 JSON value as its ``FlowMessage`` field value (goflow2's renderers inverted)."""
    if name == "type":
        return _PB_FLOW_TYPES[value]
    if name == "proto":
        return value if isinstance(value, int) else protocol_number(value)
    if name == "etype":
        return _ETHER_TYPES[value] if isinstance(value, str) else value
    if name in ("src_mac", "dst_mac"):
        return int(value.replace(":", ""), 16)
    if name in ("src_net", "dst_net"):
        return int(value.split("/")[1])
    if name in ("src_addr", "dst_addr", "sampler_address", "next_hop", "bgp_next_hop"):
        return _packed(value)
    if name in _PB_ADDRESS_LISTS:
        return [_packed(v) for v in value]
    if name == "layer_stack":
        return [_PB_LAYERS[v] for v in value]
    return value


class Goflow2PbEncoder:
    """goflow2 v2 ``-format=bin`` records: one varint-length-prefixed ``FlowMessage`` each."""

    def __init__(self) -> None:
        self.message_class: Any = flow_message_class()
        self._fields = {f.name for f in FIELDS}

    def from_json_record(self, record: Mapping[str, Any]) -> bytes:
        """The binary twin of one goflow2 JSON record (any field goflow2 writes; zeros are
        omitted on the wire, as proto3 does)."""
        values = {k: _pb_value(k, v) for k, v in record.items() if k in self._fields}
        return delimited(self.message_class(**values).SerializeToString())

    def encode(self, flows: Sequence[SimFlow], *, first_sequence_num: int = 1) -> list[bytes]:
        return [
            self.from_json_record(_goflow2_dict(flow, seq))
            for flow, seq in _numbered(flows, first_sequence_num)
        ]


# -- pmacct -------------------------------------------------------------------------------------


def pmacct_object(flow: SimFlow, *, sequence_num: int) -> dict[str, Any]:
    """One nfacctd ``purge`` object (IPFIX export, ``timestamps_utc: true``), key order as
    pmacct's JSON handlers write them."""
    number = proto_number(flow)
    return {
        "event_type": "purge",
        "peer_ip_src": SAMPLER_IP,
        "iface_in": 1,
        "iface_out": 2,
        "ip_src": flow.src_ip,
        "ip_dst": flow.dst_ip,
        "port_src": flow.src_port,
        "port_dst": flow.dst_port,
        "tcp_flags": "27" if number == 6 else "0",
        "ip_proto": _PMACCT_PROTO_NAMES.get(number, str(number)),
        "tos": 0,
        "sampling_rate": 0,
        "timestamp_start": _utc_text(flow.start_ms),
        "timestamp_end": _utc_text(flow.end_ms),
        "timestamp_arrival": _utc_text(received_ms(flow, sequence_num)),
        "export_proto_seqno": sequence_num,
        "export_proto_version": 10,
        "packets": flow.packets,
        "bytes": flow.bytes,
        "writer_id": "nfacctd_kafka/4242",
    }


def _jansson(obj: dict[str, Any]) -> bytes:
    # jansson json_dumps without JSON_COMPACT: ", " and ": " separators.
    body = b", ".join(orjson.dumps(k) + b": " + orjson.dumps(v) for k, v in obj.items())
    return b"{" + body + b"}"


def pmacct_json(
    flows: Sequence[SimFlow], *, objects_per_record: int = 1, first_sequence_num: int = 1
) -> list[bytes]:
    """pmacct Kafka plugin records: one object each, or with ``kafka_multi_values`` up to
    ``objects_per_record`` objects per record, each followed by a newline."""
    if objects_per_record < 1:
        raise ValueError("objects_per_record must be >= 1")
    objects = [
        _jansson(pmacct_object(flow, sequence_num=seq))
        for seq, flow in enumerate(flows, first_sequence_num)
    ]
    if objects_per_record == 1:
        return objects
    return [
        b"".join(obj + b"\n" for obj in objects[k : k + objects_per_record])
        for k in range(0, len(objects), objects_per_record)
    ]


# -- ECS (Filebeat netflow input) ---------------------------------------------------------------


def _locality(ip: str) -> str:
    # Filebeat's default internal_networks: the private ranges.
    return "internal" if ipaddress.ip_address(ip).is_private else "external"


def ecs_document(flow: SimFlow, *, sequence_num: int) -> dict[str, Any]:
    """One Filebeat ``netflow`` input event for an IPFIX flow, as its Kafka output writes it."""
    number = proto_number(flow)
    exported_ms = received_ms(flow, sequence_num)
    family = "ipv6" if _is_v6(flow.src_ip) else "ipv4"
    source: dict[str, Any] = {
        "bytes": flow.bytes,
        "ip": flow.src_ip,
        "locality": _locality(flow.src_ip),
        "packets": flow.packets,
    }
    destination: dict[str, Any] = {"ip": flow.dst_ip, "locality": _locality(flow.dst_ip)}
    netflow: dict[str, Any] = {
        "exporter": {
            "address": f"{SAMPLER_IP}:{EXPORTER_PORT}", "source_id": 0,
            "timestamp": _go_time(exported_ms - exported_ms % 1000), "uptime_millis": 3_600_000,
            "version": 10,
        },
        "octet_delta_count": flow.bytes,
        "packet_delta_count": flow.packets,
        "protocol_identifier": number,
        "sampling_interval": 0,
        "type": "netflow_flow",
        f"source_{family}_address": flow.src_ip,
        f"destination_{family}_address": flow.dst_ip,
        "flow_start_milliseconds": _go_time(flow.start_ms),
        "flow_end_milliseconds": _go_time(flow.end_ms),
    }  # fmt: skip
    # Filebeat writes ports only when the exporter sent transport ports.
    if number in _PORTED or flow.src_port or flow.dst_port:
        source["port"] = flow.src_port
        destination["port"] = flow.dst_port
        netflow["source_transport_port"] = flow.src_port
        netflow["destination_transport_port"] = flow.dst_port
    return {
        "@timestamp": _go_time(exported_ms),
        "@metadata": {"beat": "filebeat", "type": "_doc", "version": "8.15.0"},
        "destination": destination,
        "event": {
            "action": "netflow_flow", "category": ["network"],
            "created": _utc_text(exported_ms + 2, sep="T", zone="Z", digits=9),
            "kind": "event", "type": ["connection"], "dataset": "netflow.log",
            "module": "netflow",
        },
        "netflow": netflow,
        "network": {
            "bytes": flow.bytes, "direction": "unknown", "iana_number": number,
            "packets": flow.packets,
            "transport": _ECS_TRANSPORTS.get(number, f"unknown ({number})"),
        },
        "observer": {"ip": SAMPLER_IP},
        "source": source,
        "input": {"type": "netflow"},
        "ecs": {"version": "8.0.0"},
    }  # fmt: skip


def ecs_json(flows: Sequence[SimFlow], *, first_sequence_num: int = 1) -> list[bytes]:
    return [
        orjson.dumps(ecs_document(flow, sequence_num=seq))
        for seq, flow in enumerate(flows, first_sequence_num)
    ]


# -- Zeek ---------------------------------------------------------------------------------------


def zeek_conn(flow: SimFlow, *, sequence_num: int) -> dict[str, Any]:
    """One Zeek ``conn.log`` entry (default fields, ``JSON::TS_EPOCH``) for the flow."""
    number = proto_number(flow)
    uid = f"C{zlib.crc32(f'{sequence_num}:{flow}'.encode()):010d}{sequence_num % 10**7:07d}"
    return {
        "ts": flow.start_ms / 1000,
        "uid": uid,
        "id.orig_h": flow.src_ip,
        "id.orig_p": flow.src_port,
        "id.resp_h": flow.dst_ip,
        "id.resp_p": flow.dst_port,
        "proto": _ZEEK_TRANSPORTS.get(number, "unknown_transport"),
        **({"service": service} if (service := _ZEEK_SERVICES.get(flow.dst_port)) else {}),
        "duration": (flow.end_ms - flow.start_ms) / 1000,
        "orig_bytes": max(0, flow.bytes - _IP_TCP_HEADERS * flow.packets),
        "resp_bytes": 0,
        "conn_state": "SF" if number == 6 else "S0",
        "local_orig": ipaddress.ip_address(flow.src_ip).is_private,
        "local_resp": ipaddress.ip_address(flow.dst_ip).is_private,
        "missed_bytes": 0,
        "history": "ShADadFf" if number == 6 else "D",
        "orig_pkts": flow.packets,
        "orig_ip_bytes": flow.bytes,
        "resp_pkts": 0,
        "resp_ip_bytes": 0,
    }


def _zeek_conns(flows: Sequence[SimFlow], first: int) -> Iterator[dict[str, Any]]:
    for seq, flow in enumerate(flows, first):
        conn = zeek_conn(flow, sequence_num=seq)
        if conn["proto"] == "unknown_transport":
            conn["ip_proto"] = proto_number(flow)  # Zeek >= 7 logs the number then
        yield conn


def zeek_json(flows: Sequence[SimFlow], *, first_sequence_num: int = 1) -> list[bytes]:
    return [orjson.dumps(conn) for conn in _zeek_conns(flows, first_sequence_num)]


def _tsv_value(key: str, value: Any) -> str:
    if key in ("ts", "duration"):
        return f"{value:.6f}"
    if isinstance(value, bool):
        return "T" if value else "F"
    return str(value)


def zeek_tsv(flows: Sequence[SimFlow], *, first_sequence_num: int = 1) -> list[bytes]:
    """Data lines of a Zeek TSV ``conn.log`` with the default columns (unset ``-``, empty
    ``tunnel_parents``); the ``#`` header lines are the file's, not the records'."""
    if any(proto_number(flow) not in _ZEEK_TRANSPORTS for flow in flows):
        raise ValueError("the default TSV columns have no ip_proto for unknown_transport")
    return [_tsv_line(conn) for conn in _zeek_conns(flows, first_sequence_num)]


def _tsv_line(conn: dict[str, Any]) -> bytes:
    cells = [_tsv_value(key, conn[key]) if key in conn else "-" for key in DEFAULT_CONN_FIELDS]
    cells[DEFAULT_CONN_FIELDS.index("tunnel_parents")] = "(empty)"
    return "\t".join(cells).encode()


def goflow2_pb(flows: Sequence[SimFlow], *, first_sequence_num: int = 1) -> list[bytes]:
    return Goflow2PbEncoder().encode(flows, first_sequence_num=first_sequence_num)


Encoder = Callable[..., list[bytes]]  # (flows, first_sequence_num=1) -> record values


def encoder(name: str) -> Encoder:
    """``encoder(name)(flows, first_sequence_num=1)`` -> simulated flows as record values of
    input format ``name`` (the function the decoder registry names for it)."""
    spec = SPECS.get(name)
    if spec is None or spec.encoder is None:
        raise ValueError(f"no encoder for format {name!r}; known: {', '.join(ENCODED_FORMATS)}")
    found: Encoder = globals()[spec.encoder]
    return found
