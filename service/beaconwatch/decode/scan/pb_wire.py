"""numba scanner of goflow2 ``FlowMessage`` protobuf records, straight into flow columns.

The batch is one byte buffer with per-record ``[start, end)`` offsets. Each record must be a
varint length prefix equal to the rest of the record, then protobuf wire data: tags (field
number << 3 | wire type), varints, fixed 32/64-bit values and length-delimited values. Fields
the decoder does not read are skipped by wire type; the contents of packed repeated varint
fields are checked because protobuf parsers reject bad ones. A record is ``OK`` only when it
is well formed and passes the goflow2 field rules (``goflow2_record``); everything else, and
anything unusual that a protobuf parser might read differently (groups, a read field with an
unexpected wire type, 10-byte varints with high bits, tags beyond 32 bits), is ``SLOW`` and
is decided by the reference path (``goflow2_pb_record``). A well-formed record that breaks a
field rule says which rule, in the reference's order, so it needs no reference parse.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from beaconwatch.decode.common.initiator import tcp_flags_initiator
from beaconwatch.decode.scan.goflow2_pb_schema import (
    F_BYTES,
    F_DST_ADDR,
    F_DST_PORT,
    F_PACKETS,
    F_PROTO,
    F_SAMPLING_RATE,
    F_SRC_ADDR,
    F_SRC_PORT,
    F_TCP_FLAGS,
    F_TIME_FLOW_END_NS,
    F_TIME_FLOW_START_NS,
    F_TIME_RECEIVED_NS,
    WIRE_I32,
    WIRE_I64,
    WIRE_LEN,
    WIRE_VARINT,
    packed_varint_numbers,
)
from beaconwatch.decode.scan.goflow2_record import RULE_ORDER

# Per-record status. Only OK rows hold a flow; SLOW rows go to the reference path; the others
# are well-formed messages that break a goflow2 field rule, rejected from the status alone
# (``pb_reject``), as the reference path would.
OK = 0
SLOW = 1
BAD_FIELD = 2  # a value out of range, an address neither 4 nor 16 bytes
MISSING = 3  # an empty (absent) address
NO_TIME = 4  # neither time_flow_start_ns nor time_received_ns is set

# Per field number (< 128): 1 = a field the scanner reads from a varint, 2 = an address
# (length-delimited), 3 = a packed repeated varint field whose contents are checked.
KIND_READ_VARINT, KIND_ADDRESS, KIND_PACKED = 1, 2, 3
TABLE_SIZE = 128

_UINT32_MAX = np.uint64(2**32 - 1)
_NS_PER_MS = np.uint64(1_000_000)
_LOW7 = np.uint64(0x7F)
_V4_MAPPED = np.uint64(0x0000_FFFF_0000_0000)
# Upper bound of each field in RULE_ORDER (the order ``goflow2_record.validate`` checks them,
# which ``field`` indexes); addresses (3, 4) are checked by length instead.
_HIGHS = np.array(
    [2**63 - 1] * 3 + [0, 0, 255, 65535, 65535, 2**63 - 1, 2**63 - 1, 2**32 - 1, 2**32 - 1],
    dtype=np.uint64,
)
assert len(_HIGHS) == len(RULE_ORDER)


def field_kinds() -> npt.NDArray[np.int8]:
    """The field-kind table the scanner takes (kept out of the kernel to stay data-driven)."""
    kinds = np.zeros(TABLE_SIZE, dtype=np.int8)
    read = [F_SAMPLING_RATE, F_BYTES, F_PACKETS, F_PROTO, F_SRC_PORT, F_DST_PORT, F_TCP_FLAGS]
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
    name_number: int,
    spans: npt.NDArray[np.int64],
) -> bool:
    """Wire-scan one record into ``values`` (by field number, the read varint fields; zeroed
    here) and ``spans`` (offset, length of: source address, destination address, the last
    length-delimited field ``name_number``, a goflow2-mapped name; zeroed here). Returns
    whether the record is well formed."""
    values[:] = 0
    spans[:] = 0
    length, pos = read_varint(buf, start, end)
    if pos < 0 or length != np.uint64(end - pos):
        return False
    while pos < end:
        tag, next_pos = read_varint(buf, pos, end)
        if next_pos < 0 or next_pos - pos > 5 or tag > _UINT32_MAX:
            return False
        pos = next_pos
        number = int(tag >> np.uint64(3))
        wire = int(tag & np.uint64(7))
        if number == 0:
            return False
        kind = kinds[number] if number < TABLE_SIZE else 0
        if wire == WIRE_VARINT:
            value, pos = read_varint(buf, pos, end)
            if pos < 0 or kind == KIND_ADDRESS:
                return False
            if kind == KIND_READ_VARINT:
                values[number] = value
        elif wire == WIRE_LEN:
            size, pos = read_varint(buf, pos, end)
            if pos < 0 or size > np.uint64(end - pos) or kind == KIND_READ_VARINT:
                return False
            n = int(size)
            if kind == KIND_ADDRESS:
                at = 0 if number == F_SRC_ADDR else 2
                spans[at], spans[at + 1] = pos, n
            elif kind == KIND_PACKED and not packed_varints_ok(buf, pos, pos + n):
                return False
            elif number == name_number:
                spans[4], spans[5] = pos, n
            pos += n
        elif wire in (WIRE_I64, WIRE_I32):
            pos += 8 if wire == WIRE_I64 else 4
            if pos > end or kind in (KIND_READ_VARINT, KIND_ADDRESS):
                return False
        else:  # groups (3, 4) and the invalid wire types 6, 7
            return False
    return True


@njit(cache=True, nogil=True)
def _address_check(length: int) -> int:
    """0 for a usable address length, else MISSING (empty) or BAD_FIELD."""
    if length == 4 or length == 16:
        return 0
    return MISSING if length == 0 else BAD_FIELD


@njit(cache=True, nogil=True)
def scan_batch(
    buf: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    kinds: npt.NDArray[np.int8],
    name_number: int,
) -> tuple[npt.NDArray[Any], ...]:
    """Status, field, value, the 13 flow columns (FlowRow order), and the offset and length
    of field ``name_number`` (a goflow2-mapped name; length 0 when absent) of every record.

    For BAD_FIELD and MISSING, ``field`` is the index of the first failing field in the order
    ``goflow2_record.validate`` checks them (`RULE_ORDER`) and ``value`` what the reference
    path sees there (the number, for an address its length)."""
    n = starts.shape[0]
    status = np.full(n, SLOW, dtype=np.uint8)
    field = np.full(n, -1, dtype=np.int8)
    value = np.zeros(n, dtype=np.uint64)
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
    initiator = np.zeros(n, dtype=np.uint8)
    name_at = np.zeros(n, dtype=np.int64)
    name_len = np.zeros(n, dtype=np.int64)
    v = np.zeros(TABLE_SIZE, dtype=np.uint64)
    spans = np.zeros(6, dtype=np.int64)
    # What the reference path sees in each field, in RULE_ORDER (addresses: their length).
    seen = np.zeros(_HIGHS.shape[0], dtype=np.uint64)
    for i in range(n):
        if not scan_record(buf, starts[i], ends[i], kinds, v, name_number, spans):
            continue
        src_at, src_len, dst_at, dst_len = spans[0], spans[1], spans[2], spans[3]
        name_at[i], name_len[i] = spans[4], spans[5]
        seen[0] = v[F_TIME_FLOW_START_NS]
        seen[1] = v[F_TIME_FLOW_END_NS]
        seen[2] = v[F_TIME_RECEIVED_NS]
        seen[3] = src_len
        seen[4] = dst_len
        # uint32 fields keep the low 32 bits of a longer varint, like a protobuf parser.
        seen[5] = v[F_PROTO] & _UINT32_MAX
        seen[6] = v[F_SRC_PORT] & _UINT32_MAX
        seen[7] = v[F_DST_PORT] & _UINT32_MAX
        seen[8] = v[F_BYTES]
        seen[9] = v[F_PACKETS]
        seen[10] = v[F_SAMPLING_RATE]
        seen[11] = v[F_TCP_FLAGS] & _UINT32_MAX
        bad = -1
        for k in range(seen.shape[0]):
            if k == 3 or k == 4:
                code = _address_check(int(seen[k]))
            else:
                code = BAD_FIELD if seen[k] > _HIGHS[k] else 0
            if code != 0:
                bad = k
                status[i] = code
                value[i] = seen[k]
                break
        if bad >= 0:
            field[i] = bad
            continue
        flow_start = seen[0]
        flow_end = seen[1]
        start_ns = flow_start if flow_start != 0 else seen[2]
        if start_ns == 0:
            status[i] = NO_TIME
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
        src_port[i] = seen[6]
        dst_port[i] = seen[7]
        proto[i] = seen[5]
        nbytes[i] = seen[8]
        packets[i] = seen[9]
        rate[i] = seen[10]
        initiator[i] = tcp_flags_initiator(int(seen[5]), int(seen[11]))
        status[i] = OK
    return (
        status, field, value, start_ms, end_ms, src_hi, src_lo, dst_hi, dst_lo, src_port,
        dst_port, proto, nbytes, packets, rate, initiator, name_at, name_len,
    )  # fmt: skip
