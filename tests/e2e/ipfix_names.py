"""A small IPFIX exporter of flows with names, the way ipfixprobe's tls plugin exports them.

No exporter that puts the TLS SNI in IPFIX installs here (ipfixprobe, nProbe, YAF are neither
Debian packages nor on PyPI), so this writes the messages itself, from RFC 7011: a template
set whose record has CESNET's enterprise element TLS_SNI (PEN 8057, element 808, variable
length, as in include/ipfixprobe/ipfix-elements.hpp of CESNET/ipfixprobe) after the IANA
elements of the flow, then data sets of those records. A name of ``None`` is exported as a
zero-length value (ipfixprobe's flows without a ClientHello SNI).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

CESNET_PEN = 8057
TLS_SNI = 808  # ipfixprobe's TLS_SNI: F(8057, 808, -1, ...)
VARIABLE = 0xFFFF  # a template field length: the value carries its own length (RFC 7011 7.)
ENTERPRISE_BIT = 0x8000

# IANA elements: (id, length).
SRC_V4, DST_V4, SRC_PORT, DST_PORT, PROTO = (8, 4), (12, 4), (7, 2), (11, 2), (4, 1)
OCTETS, PACKETS, START_MS, END_MS = (1, 8), (2, 8), (152, 8), (153, 8)
IANA_FIELDS = (SRC_V4, DST_V4, SRC_PORT, DST_PORT, PROTO, OCTETS, PACKETS, START_MS, END_MS)
TEMPLATE_ID = 300


@dataclass(frozen=True, slots=True)
class NamedFlow:
    src: str
    dst: str
    src_port: int
    dst_port: int
    start_ms: int
    end_ms: int
    nbytes: int
    packets: int
    name: bytes | None  # the SNI as the ClientHello carried it (any bytes)


def _set(set_id: int, body: bytes) -> bytes:
    return struct.pack("!HH", set_id, 4 + len(body)) + body


def template_set() -> bytes:
    fields = b"".join(struct.pack("!HH", ie, length) for ie, length in IANA_FIELDS)
    sni = struct.pack("!HHI", TLS_SNI | ENTERPRISE_BIT, VARIABLE, CESNET_PEN)
    return _set(2, struct.pack("!HH", TEMPLATE_ID, len(IANA_FIELDS) + 1) + fields + sni)


def _variable(value: bytes) -> bytes:
    if len(value) < 255:
        return bytes([len(value)]) + value
    return b"\xff" + struct.pack("!H", len(value)) + value


def data_record(flow: NamedFlow) -> bytes:
    return (
        ipaddress.IPv4Address(flow.src).packed
        + ipaddress.IPv4Address(flow.dst).packed
        + struct.pack("!HHB", flow.src_port, flow.dst_port, 6)
        + struct.pack("!QQQQ", flow.nbytes, flow.packets, flow.start_ms, flow.end_ms)
        + _variable(flow.name or b"")
    )


def message(sets: bytes, sequence: int, domain_id: int = 1) -> bytes:
    header = struct.pack("!HHIII", 10, 16 + len(sets), int(time.time()), sequence, domain_id)
    return header + sets


def messages(flows: Sequence[NamedFlow], per_message: int = 20) -> list[bytes]:
    """The template in the first message, then data sets of ``per_message`` records."""
    out = [message(template_set(), 0)]
    for k in range(0, len(flows), per_message):
        chunk = flows[k : k + per_message]
        out.append(message(_set(TEMPLATE_ID, b"".join(map(data_record, chunk))), k))
    return out


def send(packets: Sequence[bytes], port: int, pause_s: float = 0.02) -> None:
    """Send over UDP to 127.0.0.1:``port``, paced (one goflow2 worker reads them in order)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for packet in packets:
            sock.sendto(packet, ("127.0.0.1", port))
            time.sleep(pause_s)
