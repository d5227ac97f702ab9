"""Reference (slow) path: one goflow2 ``-format=bin`` record -> one flow row, or a rejection.

A record is one varint length prefix followed by one ``flowpb.FlowMessage`` of exactly that
length (goflow2 v2 writes length-delimited messages). The message is parsed by the protobuf
runtime and then goes through the same field rules as goflow2 JSON records
(``goflow2_record.validate``: time fallback, end clamping, ranges, reasons). The numba fast
path (``pb_wire``) only ever accepts records this path accepts, with identical values.

Protobuf differences from JSON, by the nature of proto3: an absent scalar is 0, so ``proto``,
``dst_port``, ``bytes``, ``packets`` and ``sampling_rate`` are never "missing" (goflow2 omits
zeros on the wire and writes them as ``0`` in JSON: the values agree); ``uint32`` fields keep
the low 32 bits of a longer varint, as every protobuf parser does. Addresses must be 4 or 16
raw bytes; empty means missing.
"""

from __future__ import annotations

from typing import Any

from beaconwatch.decode.common.rows import DETAIL_MAX, FlowRow, Problem
from beaconwatch.decode.scan.goflow2_record import validate
from beaconwatch.domain.rejections import RejectReason

MAX_VARINT_BYTES = 10

# The message fields that take part in the goflow2 field rules (all scalars: 0 when absent).
_NUMERIC_FIELDS = (
    "time_flow_start_ns", "time_flow_end_ns", "time_received_ns", "proto", "src_port",
    "dst_port", "bytes", "packets", "sampling_rate", "tcp_flags",
)  # fmt: skip


def read_varint(data: bytes, pos: int) -> tuple[int, int] | None:
    """(value, next position) of the varint at ``pos``; None if truncated or over 10 bytes."""
    value = 0
    for k in range(MAX_VARINT_BYTES):
        if pos + k >= len(data):
            return None
        byte = data[pos + k]
        value |= (byte & 0x7F) << (7 * k)
        if byte < 0x80:
            return value & 0xFFFF_FFFF_FFFF_FFFF, pos + k + 1
    return None


def encode_varint(value: int) -> bytes:
    """The varint encoding of a non-negative integer."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def address_text(raw: bytes) -> str:
    """Raw network-order bytes as address text for ``validate``: dotted quad for 4 bytes, eight
    full hex groups for 16; anything else becomes text that is not an address."""
    if len(raw) == 4:
        return ".".join(str(b) for b in raw)
    if len(raw) == 16:
        return ":".join(raw[k : k + 2].hex() for k in range(0, 16, 2))
    return f"<{len(raw)} bytes>"


def message_fields(message: Any) -> dict[str, Any]:
    """The parsed message as the dict ``validate`` reads (empty addresses left out)."""
    obj: dict[str, Any] = {name: getattr(message, name) for name in _NUMERIC_FIELDS}
    for name in ("src_addr", "dst_addr"):
        raw = getattr(message, name)
        if raw:
            obj[name] = address_text(raw)
    return obj


def decode_record(record: bytes, max_record_bytes: int, message_class: Any) -> FlowRow | Problem:
    """Decode one raw record with ``message_class`` (``goflow2_pb_schema``); never raises."""
    try:
        if len(record) > max_record_bytes:
            return Problem(RejectReason.OVERSIZED, f"{len(record)} bytes > {max_record_bytes}")
        record = bytes(record)
        if not record:
            return Problem(RejectReason.INVALID_PROTOBUF, "empty record, no length prefix")
        prefix = read_varint(record, 0)
        if prefix is None:
            return Problem(RejectReason.INVALID_PROTOBUF, "malformed varint length prefix")
        length, body_at = prefix
        if length != len(record) - body_at:
            detail = f"length prefix {length} != {len(record) - body_at} bytes after it"
            return Problem(RejectReason.INVALID_PROTOBUF, detail[:DETAIL_MAX])
        try:
            message = message_class.FromString(record[body_at:])
        except Exception as exc:  # DecodeError, or a runtime limit (nesting depth)
            detail = f"malformed FlowMessage: {type(exc).__name__}: {exc}"
            return Problem(RejectReason.INVALID_PROTOBUF, detail[:DETAIL_MAX])
        return validate(message_fields(message))
    except Exception as exc:  # the decoder contract: bad input never raises
        return Problem(RejectReason.INVALID_PROTOBUF, f"undecodable: {type(exc).__name__}")
