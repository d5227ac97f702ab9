"""numba scanner of goflow2 ``FlowMessage`` protobuf records, straight into flow columns.

The batch is one byte buffer with per-record ``[start, end)`` offsets. Each record must be a
varint length prefix equal to the rest of the record, then protobuf wire data: tags (field
number << 3 | wire type), varints, fixed 32/64-bit values and length-delimited values. Fields
the decoder does not read are skipped by wire type; the contents of packed repeated varint
fields are checked because protobuf parsers reject bad ones. A record is ``OK`` only when it
is well formed and passes the goflow2 field rules (``goflow2_record``); everything else, and
anything unusual that a protobuf parser might read differently (groups, a read field with an
unexpected wire type, 10-byte varints with high bits, tags beyond 32 bits), is ``SLOW`` and
is decided by the reference path (``goflow2_pb_record``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from beaconwatch.decode.goflow2_pb_schema import (
    F_BYTES,
    F_DST_ADDR,
    F_DST_PORT,
    F_PACKETS,
    F_PROTO,
    F_SAMPLING_RATE,
    F_SRC_ADDR,
    F_SRC_PORT,
    F_TIME_FLOW_END_NS,
    F_TIME_FLOW_START_NS,
    F_TIME_RECEIVED_NS,
    WIRE_I32,
    WIRE_I64,
    WIRE_LEN,
    WIRE_VARINT,
    packed_varint_numbers,
)

OK = 0
SLOW = 1

# Per field number (< 128): 1 = a field the scanner reads from a varint, 2 = an address
# (length-delimited), 3 = a packed repeated varint field whose contents are checked.
KIND_READ_VARINT, KIND_ADDRESS, KIND_PACKED = 1, 2, 3
TABLE_SIZE = 128

_INT64_MAX = np.uint64(2**63 - 1)
_UINT32_MAX = np.uint64(2**32 - 1)
_U16_MAX = np.uint64(65535)
_U8_MAX = np.uint64(255)
_NS_PER_MS = np.uint64(1_000_000)
_LOW7 = np.uint64(0x7F)
_V4_MAPPED = np.uint64(0x0000_FFFF_0000_0000)


def field_kinds() -> npt.NDArray[np.int8]:
    """The field-kind table the scanner takes (kept out of the kernel to stay data-driven)."""
    kinds = np.zeros(TABLE_SIZE, dtype=np.int8)
    read = [F_SAMPLING_RATE, F_BYTES, F_PACKETS, F_PROTO, F_SRC_PORT, F_DST_PORT]
    read += [F_TIME_RECEIVED_NS, F_TIME_FLOW_START_NS, F_TIME_FLOW_END_NS]
    kinds[read] = KIND_READ_VARINT
    kinds[[F_SRC_ADDR, F_DST_ADDR]] = KIND_ADDRESS
    kinds[list(packed_varint_numbers())] = KIND_PACKED
    return kinds


@njit(cache=True, nogil=True)
def read_varint(buf: npt.NDArray[np.uint8], pos: int, end: int) -> tuple[np.uint64, int]:
    """(value, next position) of the varint at ``pos``; next position -1 when it runs past
    ``end``, is longer than 10 bytes, or its 10th byte carries bits beyond 64."""
    value = np.uint64(0)
    for k in range(10):
        if pos + k >= end:
            return np.uint64(0), -1
        byte = buf[pos + k]
        value |= (np.uint64(byte) & _LOW7) << np.uint64(7 * k)
        if byte < 0x80:
            if k == 9 and byte > 1:
                return np.uint64(0), -1
            return value, pos + k + 1
    return np.uint64(0), -1


@njit(cache=True, nogil=True)
def packed_varints_ok(buf: npt.NDArray[np.uint8], pos: int, end: int) -> bool:
    while pos < end:
        _, pos = read_varint(buf, pos, end)
        if pos < 0:
            return False
    return True


@njit(cache=True, nogil=True)
def big_endian(buf: npt.NDArray[np.uint8], pos: int, n: int) -> np.uint64:
    value = np.uint64(0)
    for k in range(n):
        value = (value << np.uint64(8)) | np.uint64(buf[pos + k])
    return value


@njit(cache=True, nogil=True)
def scan_record(
    buf: npt.NDArray[np.uint8],
    start: int,
    end: int,
    kinds: npt.NDArray[np.int8],
    values: npt.NDArray[np.uint64],
) -> tuple[bool, int, int, int, int]:
    """Wire-scan one record into ``values`` (by field number, the read varint fields; zeroed
    here). Returns (ok, src offset, src length, dst offset, dst length)."""
    values[:] = 0
    src_at, src_len, dst_at, dst_len = 0, 0, 0, 0
    length, pos = read_varint(buf, start, end)
    if pos < 0 or length != np.uint64(end - pos):
        return False, 0, 0, 0, 0
    while pos < end:
        tag, next_pos = read_varint(buf, pos, end)
        if next_pos < 0 or next_pos - pos > 5 or tag > _UINT32_MAX:
            return False, 0, 0, 0, 0
        pos = next_pos
        number = int(tag >> np.uint64(3))
        wire = int(tag & np.uint64(7))
        if number == 0:
            return False, 0, 0, 0, 0
        kind = kinds[number] if number < TABLE_SIZE else 0
        if wire == WIRE_VARINT:
            value, pos = read_varint(buf, pos, end)
            if pos < 0 or kind == KIND_ADDRESS:
                return False, 0, 0, 0, 0
            if kind == KIND_READ_VARINT:
                values[number] = value
        elif wire == WIRE_LEN:
            size, pos = read_varint(buf, pos, end)
            if pos < 0 or size > np.uint64(end - pos) or kind == KIND_READ_VARINT:
                return False, 0, 0, 0, 0
            n = int(size)
            if kind == KIND_ADDRESS:
                if number == F_SRC_ADDR:
                    src_at, src_len = pos, n
                else:
                    dst_at, dst_len = pos, n
            elif kind == KIND_PACKED and not packed_varints_ok(buf, pos, pos + n):
                return False, 0, 0, 0, 0
            pos += n
        elif wire in (WIRE_I64, WIRE_I32):
            pos += 8 if wire == WIRE_I64 else 4
            if pos > end or kind in (KIND_READ_VARINT, KIND_ADDRESS):
                return False, 0, 0, 0, 0
        else:  # groups (3, 4) and the invalid wire types 6, 7
            return False, 0, 0, 0, 0
    return True, src_at, src_len, dst_at, dst_len


@njit(cache=True, nogil=True)
def scan_batch(
    buf: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    kinds: npt.NDArray[np.int8],
) -> tuple[npt.NDArray[Any], ...]:
    """Status (OK/SLOW) and the 12 flow columns (FlowRow order) for every record."""
    n = starts.shape[0]
    status = np.full(n, SLOW, dtype=np.uint8)
    start_ms = np.zeros(n, dtype=np.int64)
    end_ms = np.zeros(n, dtype=np.int64)
    src_hi = np.zeros(n, dtype=np.uint64)
    src_lo = np.zeros(n, dtype=np.uint64)
    dst_hi = np.zeros(n, dtype=np.uint64)
    dst_lo = np.zeros(n, dtype=np.uint64)
    src_port = np.zeros(n, dtype=np.uint16)
    dst_port = np.zeros(n, dtype=np.uint16)
    proto = np.zeros(n, dtype=np.uint8)
    nbytes = np.zeros(n, dtype=np.uint64)
    packets = np.zeros(n, dtype=np.uint64)
    rate = np.zeros(n, dtype=np.uint32)
    v = np.zeros(TABLE_SIZE, dtype=np.uint64)
    for i in range(n):
        ok, src_at, src_len, dst_at, dst_len = scan_record(buf, starts[i], ends[i], kinds, v)
        if not ok or (src_len != 4 and src_len != 16) or (dst_len != 4 and dst_len != 16):
            continue
        flow_start = v[F_TIME_FLOW_START_NS]
        flow_end = v[F_TIME_FLOW_END_NS]
        received = v[F_TIME_RECEIVED_NS]
        if flow_start > _INT64_MAX or flow_end > _INT64_MAX or received > _INT64_MAX:
            continue
        # uint32 fields keep the low 32 bits of a longer varint, like a protobuf parser.
        p = v[F_PROTO] & _UINT32_MAX
        sp = v[F_SRC_PORT] & _UINT32_MAX
        dp = v[F_DST_PORT] & _UINT32_MAX
        if p > _U8_MAX or sp > _U16_MAX or dp > _U16_MAX:
            continue
        if v[F_BYTES] > _INT64_MAX or v[F_PACKETS] > _INT64_MAX or v[F_SAMPLING_RATE] > _UINT32_MAX:
            continue
        start_ns = flow_start if flow_start != 0 else received
        if start_ns == 0:
            continue
        s_ms = np.int64(start_ns // _NS_PER_MS)
        e_ms = s_ms
        if flow_end != 0:
            e_ms = max(np.int64(flow_end // _NS_PER_MS), s_ms)
        start_ms[i] = s_ms
        end_ms[i] = e_ms
        if src_len == 4:
            src_lo[i] = _V4_MAPPED | big_endian(buf, src_at, 4)
        else:
            src_hi[i] = big_endian(buf, src_at, 8)
            src_lo[i] = big_endian(buf, src_at + 8, 8)
        if dst_len == 4:
            dst_lo[i] = _V4_MAPPED | big_endian(buf, dst_at, 4)
        else:
            dst_hi[i] = big_endian(buf, dst_at, 8)
            dst_lo[i] = big_endian(buf, dst_at + 8, 8)
        src_port[i] = sp
        dst_port[i] = dp
        proto[i] = p
        nbytes[i] = v[F_BYTES]
        packets[i] = v[F_PACKETS]
        rate[i] = v[F_SAMPLING_RATE]
        status[i] = OK
    return (
        status, start_ms, end_ms, src_hi, src_lo, dst_hi, dst_lo, src_port, dst_port, proto,
        nbytes, packets, rate,
    )  # fmt: skip
