"""Numba fast path: scan a batch of flat goflow2 JSON objects straight into flow columns.

The records are laid end to end in one uint8 buffer; ``starts``/``ends`` delimit each one. The
scanner validates the whole object (so it never accepts what ``orjson`` would refuse), picks
out the few keys a flow needs, parses their values in place, and skips everything else
(strings, numbers, literals, nested arrays/objects). It accepts only the plain shape goflow2
writes; anything else (escapes, non-ASCII, floats, huge numbers, duplicate needed keys, deep
nesting, out-of-range or missing values, ...) gets status ``SLOW`` and is decided by the
reference slow path in ``goflow2_record``, which also produces the precise rejection reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from beaconwatch.decode.ip_text import parse_ip
from beaconwatch.decode.json_tokens import MAX_DEPTH, int_end, skip_value, skip_ws, string_end
from beaconwatch.decode.raw_pointer import Pointer, i64_pointer, u8_pointer, u64_pointer

OK = 0
SLOW = 1

# Needed keys; the index is the bit in the per-record `seen` mask and the slot in `vals`.
KEYS: tuple[str, ...] = (
    "time_flow_start_ns",  # 0
    "time_flow_end_ns",  # 1
    "time_received_ns",  # 2
    "src_addr",  # 3
    "dst_addr",  # 4
    "proto",  # 5
    "src_port",  # 6
    "dst_port",  # 7
    "bytes",  # 8
    "packets",  # 9
    "sampling_rate",  # 10
)
_K_START, _K_END, _K_RECV, _K_SRC, _K_DST, _K_PROTO = 0, 1, 2, 3, 4, 5
_K_SPORT, _K_DPORT, _K_BYTES, _K_PACKETS, _K_RATE = 6, 7, 8, 9, 10

_KEY_LENGTHS = sum(1 << n for n in {len(k) for k in KEYS})  # bit n: some needed key has length n
INT64_MAX = (1 << 63) - 1
UINT32_MAX = (1 << 32) - 1


def key_table() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """KEYS as a padded byte matrix plus lengths, for the scanner."""
    width = max(len(k) for k in KEYS)
    table = np.zeros((len(KEYS), width), dtype=np.uint8)
    for row, key in enumerate(KEYS):
        table[row, : len(key)] = np.frombuffer(key.encode("ascii"), dtype=np.uint8)
    return table, np.array([len(k) for k in KEYS], dtype=np.int64)


@njit(cache=True, nogil=True, inline="always")
def _is_ws(c: int) -> bool:
    return c == 32 or c == 10 or c == 13 or c == 9


@njit(cache=True, nogil=True)
def _key_id(
    buf: Pointer, start: int, end: int, keys: Pointer, key_lens: Pointer, n_keys: int, width: int
) -> int:
    n = end - start
    if n >= 64 or not (_KEY_LENGTHS >> n) & 1:  # most keys are rejected by length alone
        return -1
    return _find_name(buf, start, n, keys, key_lens, n_keys, width)


@njit(cache=True, nogil=True)
def _find_name(
    buf: Pointer, start: int, n: int, table: Pointer, lens: Pointer, n_entries: int, width: int
) -> int:
    """Index of the entry of a fixed-width name table equal to ``buf[start:start+n]``, or -1."""
    for k in range(n_entries):
        if lens[k] != n:
            continue
        same = True
        for j in range(n):
            if buf[start + j] != table[k * width + j]:
                same = False
                break
        if same:
            return k
    return -1


@njit(cache=True, nogil=True)
def _uint(buf: Pointer, i: int, end: int) -> tuple[int, Any]:
    """A non-negative JSON integer of at most 19 digits at ``buf[i]``: (end index | -1, value)."""
    j = int_end(buf, i, end)
    value = np.uint64(0)
    if j < 0 or buf[i] == 45:
        return -1, value
    for p in range(i, j):
        value = value * np.uint64(10) + np.uint64(buf[p] - 48)
    return j, value


@njit(cache=True, nogil=True)
def _proto_value(
    buf: Pointer,
    i: int,
    end: int,
    names: Pointer,
    name_lens: Pointer,
    name_nums: Pointer,
    n_names: int,
    width: int,
) -> tuple[int, Any]:
    """``proto`` as a number or a known name/decimal string: (end index | -1, number)."""
    if buf[i] != 34:
        j, value = _uint(buf, i, end)
        if j < 0 or value > np.uint64(255):
            return -1, 0
        return j, np.int64(value)
    j = string_end(buf, i, end)
    if j < 0:
        return -1, 0
    s = i + 1
    n = j - 1 - s
    k = _find_name(buf, s, n, names, name_lens, n_names, width)
    if k >= 0:
        return j, name_nums[k]
    # Decimal string without leading zeros, 0..255.
    if n < 1 or n > 3 or (n > 1 and buf[s] == 48):
        return -1, 0
    number = 0
    for p in range(s, s + n):
        if not 48 <= buf[p] <= 57:
            return -1, 0
        number = number * 10 + (buf[p] - 48)
    if number > 255:
        return -1, 0
    return j, number


@njit(cache=True, nogil=True)
def _scan_record(
    buf: Pointer,
    start: int,
    end: int,
    keys: Pointer,
    key_lens: Pointer,
    n_keys: int,
    key_width: int,
    names: Pointer,
    name_lens: Pointer,
    name_nums: Pointer,
    n_names: int,
    name_width: int,
    vals: Pointer,
    stack: Pointer,
) -> int:
    """Fill ``vals`` (indexed like KEYS; addresses take two slots each, see below) from one
    record; returns the bit mask of needed keys seen, or -1 for the slow path."""
    i = skip_ws(buf, start, end)
    if i >= end or buf[i] != 123:
        return -1
    i = skip_ws(buf, i + 1, end)
    seen = 0
    while True:
        if i >= end or buf[i] != 34:
            return -1  # also catches "{}" and trailing commas
        key_end = string_end(buf, i, end)
        if key_end < 0:
            return -1
        k = _key_id(buf, i + 1, key_end - 1, keys, key_lens, n_keys, key_width)
        # goflow2 writes no whitespace: test for the plain byte before calling skip_ws.
        i = key_end if key_end < end and buf[key_end] == 58 else skip_ws(buf, key_end, end)
        if i >= end or buf[i] != 58:
            return -1
        i += 1
        if i < end and _is_ws(buf[i]):
            i = skip_ws(buf, i, end)
        if i >= end:
            return -1
        if k < 0:
            c = buf[i]  # inline the common value shapes; skip_value handles everything
            if c == 34:
                i = string_end(buf, i, end)
            elif 48 <= c <= 57:
                i = int_end(buf, i, end)
            elif c == 91 and i + 1 < end and buf[i + 1] == 93:  # "[]"
                i += 2
            else:
                i = skip_value(buf, i, end, stack)
        elif (seen >> k) & 1:
            return -1  # duplicate needed key: orjson keeps the last one, let it decide
        else:
            seen |= 1 << k
            if k in (_K_SRC, _K_DST):
                if buf[i] != 34:
                    return -1
                j = string_end(buf, i, end)
                if j < 0:
                    return -1
                ok, hi, lo = parse_ip(buf, i + 1, j - 1)
                if not ok:
                    return -1
                # hi goes to the key's own slot, lo to an extra slot after the KEYS slots.
                vals[k] = hi
                vals[len(KEYS) + k - _K_SRC] = lo
                i = j
            elif k == _K_PROTO:
                i, number = _proto_value(
                    buf, i, end, names, name_lens, name_nums, n_names, name_width
                )
                vals[k] = np.uint64(number)
            else:
                i, value = _uint(buf, i, end)
                vals[k] = value
        if i < 0:
            return -1
        if i < end and _is_ws(buf[i]):
            i = skip_ws(buf, i, end)
        if i >= end:
            return -1
        if buf[i] == 44:
            i += 1
            if i < end and _is_ws(buf[i]):
                i = skip_ws(buf, i, end)
        elif buf[i] == 125:
            i += 1
            break
        else:
            return -1
    if skip_ws(buf, i, end) != end:
        return -1
    return seen


@njit(cache=True, nogil=True)
def scan_batch(
    buf: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
    keys: npt.NDArray[np.uint8],
    key_lens: npt.NDArray[np.int64],
    names: npt.NDArray[np.uint8],
    name_lens: npt.NDArray[np.int64],
    name_nums: npt.NDArray[np.int64],
) -> tuple[
    npt.NDArray[np.int8],
    npt.NDArray[np.int64],
    npt.NDArray[np.int64],
    npt.NDArray[np.uint64],
    npt.NDArray[np.uint64],
    npt.NDArray[np.uint64],
    npt.NDArray[np.uint64],
    npt.NDArray[np.uint16],
    npt.NDArray[np.uint16],
    npt.NDArray[np.uint8],
    npt.NDArray[np.uint64],
    npt.NDArray[np.uint64],
    npt.NDArray[np.uint32],
]:
    """Scan every record; rows whose status is not OK hold zeros and go to the slow path.

    Returns (status, start_ms, end_ms, src_hi, src_lo, dst_hi, dst_lo, src_port, dst_port,
    proto, bytes, packets, sampling_rate). The field rules mirror ``goflow2_record``.
    """
    n = starts.shape[0]
    status = np.full(n, SLOW, dtype=np.int8)
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
    vals_mem = np.zeros(len(KEYS) + 2, dtype=np.uint64)
    stack_mem = np.zeros(MAX_DEPTH, dtype=np.uint8)
    # Raw pointers for the helpers (see raw_pointer); the arrays above own the memory.
    p_buf = u8_pointer(buf.ctypes.data)
    p_keys = u8_pointer(keys.ctypes.data)
    p_key_lens = i64_pointer(key_lens.ctypes.data)
    p_names = u8_pointer(names.ctypes.data)
    p_name_lens = i64_pointer(name_lens.ctypes.data)
    p_name_nums = i64_pointer(name_nums.ctypes.data)
    vals = u64_pointer(vals_mem.ctypes.data)
    stack = u8_pointer(stack_mem.ctypes.data)
    n_keys = key_lens.shape[0]
    key_width = keys.shape[1]
    n_names = name_lens.shape[0]
    name_width = names.shape[1]
    i64_max = np.uint64(INT64_MAX)
    required = (1 << _K_SRC) | (1 << _K_DST) | (1 << _K_PROTO) | (1 << _K_DPORT) | (1 << _K_BYTES)
    for r in range(n):
        seen = _scan_record(
            p_buf, starts[r], ends[r], p_keys, p_key_lens, n_keys, key_width,
            p_names, p_name_lens, p_name_nums, n_names, name_width, vals, stack,
        )  # fmt: skip
        if seen < 0 or (seen & required) != required:
            continue
        v_start = vals[_K_START] if (seen >> _K_START) & 1 else np.uint64(0)
        v_end = vals[_K_END] if (seen >> _K_END) & 1 else np.uint64(0)
        v_recv = vals[_K_RECV] if (seen >> _K_RECV) & 1 else np.uint64(0)
        v_packets = vals[_K_PACKETS] if (seen >> _K_PACKETS) & 1 else np.uint64(1)
        v_rate = vals[_K_RATE] if (seen >> _K_RATE) & 1 else np.uint64(1)
        v_sport = vals[_K_SPORT] if (seen >> _K_SPORT) & 1 else np.uint64(0)
        if (
            v_start > i64_max
            or v_end > i64_max
            or v_recv > i64_max
            or vals[_K_BYTES] > i64_max
            or v_packets > i64_max
            or v_rate > np.uint64(UINT32_MAX)
            or v_sport > np.uint64(65535)
            or vals[_K_DPORT] > np.uint64(65535)
        ):
            continue
        # Flow start: the exporter's time; 0 means the exporter did not send it (e.g. sFlow),
        # so fall back to when goflow2 received the packet.
        t_ns = v_start if v_start > np.uint64(0) else v_recv
        if t_ns == np.uint64(0):
            continue
        t0 = np.int64(t_ns // np.uint64(1_000_000))
        t1 = np.int64(v_end // np.uint64(1_000_000)) if v_end > np.uint64(0) else t0
        status[r] = OK
        start_ms[r] = t0
        end_ms[r] = t1 if t1 > t0 else t0  # a clock-skewed end never precedes the start
        src_hi[r] = vals[_K_SRC]
        src_lo[r] = vals[len(KEYS)]
        dst_hi[r] = vals[_K_DST]
        dst_lo[r] = vals[len(KEYS) + 1]
        src_port[r] = v_sport
        dst_port[r] = vals[_K_DPORT]
        proto[r] = vals[_K_PROTO]
        nbytes[r] = vals[_K_BYTES]
        packets[r] = v_packets
        rate[r] = v_rate
    return (
        status,
        start_ms,
        end_ms,
        src_hi,
        src_lo,
        dst_hi,
        dst_lo,
        src_port,
        dst_port,
        proto,
        nbytes,
        packets,
        rate,
    )
