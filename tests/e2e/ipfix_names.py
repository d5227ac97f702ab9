"""A small IPFIX exporter of flows with names, the way ipfixprobe's tls and http plugins do.

No exporter that puts the TLS SNI in IPFIX installs here (ipfixprobe, nProbe, YAF are neither
Debian packages nor on PyPI), so this writes the messages itself, from RFC 7011: a template
set with two templates, the IANA elements of the flow then one enterprise element: TLS_SNI
(PEN 8057, element 808) or HTTP_DOMAIN (PEN 39499, element 1), both variable length, as in
include/ipfixprobe/ipfix-elements.hpp of CESNET/ipfixprobe; then data sets of those records.
A name of ``None`` is exported as a zero-length value (a flow without a ClientHello SNI).
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

TLS_SNI = (8057, 808)  # ipfixprobe's TLS_SNI: F(8057, 808, -1, ...)
HTTP_DOMAIN = (39499, 1)  # ipfixprobe's HTTP_DOMAIN (the Host header): F(39499, 1, -1, ...)
VARIABLE = 0xFFFF  # a template field length: the value carries its own length (RFC 7011 7.)
ENTERPRISE_BIT = 0x8000

# IANA elements: (id, length).
SRC_V4, DST_V4, SRC_PORT, DST_PORT, PROTO = (8, 4), (12, 4), (7, 2), (11, 2), (4, 1)
OCTETS, PACKETS, START_MS, END_MS = (1, 8), (2, 8), (152, 8), (153, 8)
IANA_FIELDS = (SRC_V4, DST_V4, SRC_PORT, DST_PORT, PROTO, OCTETS, PACKETS, START_MS, END_MS)
TEMPLATE_IDS = {TLS_SNI: 300, HTTP_DOMAIN: 301}


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
    name: bytes | None  # the SNI / Host as the packet carried it (any bytes)
    element: tuple[int, int] = TLS_SNI  # (PEN, element id) the exporter puts the name in


def _set(set_id: int, body: bytes) -> bytes:
    return struct.pack("!HH", set_id, 4 + len(body)) + body


def template_set() -> bytes:
    fields = b"".join(struct.pack("!HH", ie, length) for ie, length in IANA_FIELDS)
    body = b""
    for (pen, element), template_id in TEMPLATE_IDS.items():
        name = struct.pack("!HHI", element | ENTERPRISE_BIT, VARIABLE, pen)
        body += struct.pack("!HH", template_id, len(IANA_FIELDS) + 1) + fields + name
    return _set(2, body)


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
    """The templates in the first message, then data sets of up to ``per_message`` records
    (one set per template used)."""
    out = [message(template_set(), 0)]
    for k in range(0, len(flows), per_message):
        chunk = flows[k : k + per_message]
        sets = b"".join(
            _set(tid, b"".join(data_record(f) for f in chunk if f.element == element))
            for element, tid in TEMPLATE_IDS.items()
            if any(f.element == element for f in chunk)
        )
        out.append(message(sets, k))
    return out


def send(packets: Sequence[bytes], port: int, pause_s: float = 0.02) -> None:
    """Send over UDP to 127.0.0.1:``port``, paced (one goflow2 worker reads them in order)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for packet in packets:
            sock.sendto(packet, ("127.0.0.1", port))
            time.sleep(pause_s)
