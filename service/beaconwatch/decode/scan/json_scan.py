"""Numba fast path: scan a batch of flat goflow2 JSON objects straight into flow columns.

The records are laid end to end in one uint8 buffer; ``starts``/``ends`` delimit each one. The
scanner validates the whole object (so it never accepts what ``orjson`` would refuse), picks
out the few keys a flow needs, parses their values in place, and skips everything else
(strings, numbers, literals, nested arrays/objects). It accepts only the plain shape goflow2
writes; anything else (escapes, non-ASCII, floats, huge numbers, duplicate needed keys, deep
nesting, ...) gets status ``SLOW`` and is decided by the reference slow path in
``goflow2_record``, which also produces the precise rejection reason. Plain records that are
certainly bad get a status saying why instead (a record cut short, a missing field, the first
field whose value is out of range or of the wrong type, with its offsets), so a storm of them
costs no reference parse: ``json_reject`` turns the status into the reference's rejection.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
from numba import njit

from beaconwatch.decode.common.initiator import tcp_flags_initiator
from beaconwatch.decode.common.ip_text import ZERO_DIGIT, parse_ip
from beaconwatch.decode.scan.json_tokens import (
    ENDED,
    MAX_DEPTH,
    int_end,
    skip_value,
    skip_ws,
    string_end,
)
from beaconwatch.decode.scan.raw_pointer import (
    Pointer,
    i64_pointer,
    keep_alive,
    load_u64,
    u8_pointer,
    u64_pointer,
)

# Per-record status. Only OK rows hold a flow; SLOW rows go to the reference path; the others
# are rejections the reference path would make too, built from the status (``json_reject``).
OK = 0
SLOW = 1  # unusual or invalid: the reference path decides
BAD_FIELD = 2  # a needed field's value (valid JSON) the fast path cannot accept
MISSING = 3  # a required field is absent
NO_TIME = 4  # neither time_flow_start_ns nor time_received_ns is set
TRUNCATED = 5  # the input ends inside a valid prefix: orjson's "unexpected end of data"

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
    "tcp_flags",  # 11: only for the initiator (`decode.initiator`)
)
_K_START, _K_END, _K_RECV, _K_SRC, _K_DST, _K_PROTO = 0, 1, 2, 3, 4, 5
_K_SPORT, _K_DPORT, _K_BYTES, _K_PACKETS, _K_RATE, _K_FLAGS = 6, 7, 8, 9, 10, 11
# Read but under no field rule: the flow's name, when a goflow2 mapping file adds the field
# (``goflow2_names``). Any value is skipped, never rejected; its span is returned.
NAME_KEY = "server_name"
SCAN_KEYS = (*KEYS, NAME_KEY)
_K_NAME = len(KEYS)

_KEY_LENGTHS = sum(1 << n for n in {len(k) for k in SCAN_KEYS})  # bit n: a key has length n
INT64_MAX = (1 << 63) - 1
UINT32_MAX = (1 << 32) - 1
UINT64_MAX = (1 << 64) - 1


def key_table() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """SCAN_KEYS as a padded byte matrix plus lengths, for the scanner."""
    width = max(len(k) for k in SCAN_KEYS)
    table = np.zeros((len(SCAN_KEYS), width), dtype=np.uint8)
    for row, key in enumerate(SCAN_KEYS):
        table[row, : len(key)] = np.frombuffer(key.encode("ascii"), dtype=np.uint8)
    return table, np.array([len(k) for k in SCAN_KEYS], dtype=np.int64)


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


# Member keys remembered from the records before (see `_same_key`): goflow2 writes the same
# keys in the same order in every record, so most keys are known by one or two word compares.
MAX_TEMPLATE_MEMBERS = 96


@njit(cache=True, nogil=True, inline="always")
def _same_key(buf: Pointer, i: int, end: int, t: int, n: int) -> bool:
    """Whether ``buf[i:i+n]`` equals ``buf[t:t+n]``, an earlier record's key with its quotes
    (t < i, so whatever is readable at i is readable at t)."""
    if n <= 0 or i + max(n, 8) > end:
        return False
    if n < 8:
        mask = (np.uint64(1) << np.uint64(8 * n)) - np.uint64(1)
        differ = (load_u64(buf, i) ^ load_u64(buf, t)) & mask
        return bool(differ == 0)
    p = 0
    while p + 8 < n:
        if load_u64(buf, i + p) != load_u64(buf, t + p):
            return False
        p += 8
    return bool(load_u64(buf, i + n - 8) == load_u64(buf, t + n - 8))


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
        number = number * 10 + (buf[p] - ZERO_DIGIT)
    if number > 255:
        return -1, 0
    return j, number


@njit(cache=True, nogil=True)
def _needed_value(
    buf: Pointer,
    i: int,
    end: int,
    k: int,
    names: Pointer,
    name_lens: Pointer,
    name_nums: Pointer,
    n_names: int,
    name_width: int,
    vals: Pointer,
    stack: Pointer,
) -> tuple[int, bool]:
    """Parse the value of needed key ``k`` at ``buf[i]`` into ``vals``: (end index, whether the
    fast path could read it). A valid value it cannot read (a string for a number, a negative
    number, an unknown protocol name, a bad address...) is skipped and flagged for the caller;
    an invalid or unusual token ends the scan (-1, or ``ENDED``)."""
    if k == _K_NAME:  # judged by goflow2_names from its span
        return skip_value(buf, i, end, stack), True
    if k in (_K_SRC, _K_DST):
        if buf[i] == 34:
            j = string_end(buf, i, end)
            if j < 0:
                return j, False
            ok, hi, lo = parse_ip(buf, i + 1, j - 1)
            if ok:
                # hi goes to the key's own slot, lo to an extra slot after the KEYS slots.
                vals[k] = hi
                vals[len(KEYS) + k - _K_SRC] = lo
                return j, True
            return j, False
    elif k == _K_PROTO:
        j, number = _proto_value(buf, i, end, names, name_lens, name_nums, n_names, name_width)
        if j >= 0:
            vals[k] = np.uint64(number)
            return j, True
        if buf[i] == 34:  # a string that names no protocol the table knows
            return string_end(buf, i, end), False
    else:
        j, value = _uint(buf, i, end)
        if j >= 0:
            vals[k] = value
            return j, True
    return skip_value(buf, i, end, stack), False


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
    spans: Pointer,
    stack: Pointer,
    template: Pointer,
) -> tuple[int, int]:
    """Fill ``vals`` (indexed like KEYS; addresses take two slots each, see `_needed_value`)
    and ``spans`` (value k at ``spans[2k]:spans[2k+1]``) from one record. Returns (mask of the
    needed keys seen, mask of those whose value the fast path could not read), or a negative
    first item: -1 for the slow path, ``ENDED`` for a record cut short.

    ``template`` holds, for member j, the offset, length (quotes included; 0 = none) and KEYS
    index of the last plain key seen at that position, in slots 3j..3j+2; it is updated."""
    i = skip_ws(buf, start, end)
    if i >= end or buf[i] != 123:
        return -1, 0
    i = skip_ws(buf, i + 1, end)
    seen = 0
    unread = 0
    member = 0
    while True:
        if i >= end:
            return ENDED, 0
        if buf[i] != 34:
            return -1, 0  # also catches "{}" and trailing commas
        slot = 3 * member
        if member < MAX_TEMPLATE_MEMBERS and _same_key(
            buf, i, end, template[slot], template[slot + 1]
        ):
            key_end = i + template[slot + 1]
            k = template[slot + 2]
        else:
            key_end = string_end(buf, i, end)
            if key_end < 0:
                return key_end, 0
            k = _key_id(buf, i + 1, key_end - 1, keys, key_lens, n_keys, key_width)
            if member < MAX_TEMPLATE_MEMBERS:
                template[slot] = i
                template[slot + 1] = key_end - i
                template[slot + 2] = k
        member += 1
        # goflow2 writes no whitespace: test for the plain byte before calling skip_ws.
        i = key_end if key_end < end and buf[key_end] == 58 else skip_ws(buf, key_end, end)
        if i >= end:
            return ENDED, 0
        if buf[i] != 58:
            return -1, 0
        i += 1
        if i < end and _is_ws(buf[i]):
            i = skip_ws(buf, i, end)
        if i >= end:
            return ENDED, 0
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
            return -1, 0  # duplicate needed key: orjson keeps the last one, let it decide
        else:
            seen |= 1 << k
            spans[2 * k] = i
            i, read = _needed_value(
                buf, i, end, k, names, name_lens, name_nums, n_names, name_width, vals, stack
            )
            spans[2 * k + 1] = i
            if not read:
                unread |= 1 << k
        if i < 0:
            return i, 0
        if i < end and _is_ws(buf[i]):
            i = skip_ws(buf, i, end)
        if i >= end:
            return ENDED, 0
        if buf[i] == 44:
            i += 1
            if i < end and _is_ws(buf[i]):
                i = skip_ws(buf, i, end)
        elif buf[i] == 125:
            i += 1
            break
        else:
            return -1, 0
    if skip_ws(buf, i, end) != end:
        return -1, 0
    return seen, unread


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
) -> tuple[npt.NDArray[Any], ...]:
    """Scan every record; rows whose status is not OK hold zeros.

    Returns (status, field, value_start, value_end, start_ms, end_ms, src_hi, src_lo, dst_hi,
    dst_lo, src_port, dst_port, proto, bytes, packets, sampling_rate, initiator, name_start,
    name_end). ``name_start:name_end`` is the `NAME_KEY` value's JSON text (0:0 without
    one) of OK rows. ``field`` is
    the KEYS index for BAD_FIELD and MISSING, ``value_start:value_end`` the offsets in ``buf``
    of a BAD_FIELD value. The field rules mirror ``goflow2_record``, in the order it applies them:
    the first needed field that is missing or that the fast path cannot accept is reported.
    """
    n = starts.shape[0]
    status = np.full(n, SLOW, dtype=np.int8)
    field = np.full(n, -1, dtype=np.int8)
    value_start = np.zeros(n, dtype=np.int64)
    value_end = np.zeros(n, dtype=np.int64)
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
    name_start = np.zeros(n, dtype=np.int64)
    name_end = np.zeros(n, dtype=np.int64)
    vals_mem = np.zeros(len(KEYS) + 2, dtype=np.uint64)
    spans_mem = np.zeros(2 * len(SCAN_KEYS), dtype=np.int64)
    stack_mem = np.zeros(MAX_DEPTH, dtype=np.uint8)
    template_mem = np.zeros(3 * MAX_TEMPLATE_MEMBERS, dtype=np.int64)
    # Upper bounds per key (the address and proto slots are checked while parsing).
    highs = np.full(len(KEYS), INT64_MAX, dtype=np.uint64)
    highs[_K_SRC] = highs[_K_DST] = np.uint64(UINT64_MAX)  # the high halves of addresses
    highs[_K_SPORT] = highs[_K_DPORT] = 65535
    highs[_K_RATE] = highs[_K_FLAGS] = UINT32_MAX
    # Raw pointers for the helpers (see raw_pointer); the arrays own the memory, and those
    # allocated here are kept alive past the loop (``keep_alive``, below).
    p_buf = u8_pointer(buf.ctypes.data)
    p_keys = u8_pointer(keys.ctypes.data)
    p_key_lens = i64_pointer(key_lens.ctypes.data)
    p_names = u8_pointer(names.ctypes.data)
    p_name_lens = i64_pointer(name_lens.ctypes.data)
    p_name_nums = i64_pointer(name_nums.ctypes.data)
    vals = u64_pointer(vals_mem.ctypes.data)
    spans = i64_pointer(spans_mem.ctypes.data)
    stack = u8_pointer(stack_mem.ctypes.data)
    template = i64_pointer(template_mem.ctypes.data)
    n_keys = key_lens.shape[0]
    key_width = keys.shape[1]
    n_names = name_lens.shape[0]
    name_width = names.shape[1]
    required = (1 << _K_SRC) | (1 << _K_DST) | (1 << _K_PROTO) | (1 << _K_DPORT) | (1 << _K_BYTES)
    for r in range(n):
        seen, unread = _scan_record(
            p_buf, starts[r], ends[r], p_keys, p_key_lens, n_keys, key_width,
            p_names, p_name_lens, p_name_nums, n_names, name_width, vals, spans, stack,
            template,
        )  # fmt: skip
        if seen < 0:
            if seen == ENDED:
                status[r] = TRUNCATED
            continue
        bad = -1
        for k in range(len(KEYS)):
            present = (seen >> k) & 1
            if (unread >> k) & 1 or (present and vals[k] > highs[k]):
                bad = k
                status[r] = BAD_FIELD
                value_start[r] = spans[2 * k]
                value_end[r] = spans[2 * k + 1]
                break
            if not present and (required >> k) & 1:
                bad = k
                status[r] = MISSING
                break
        if bad >= 0:
            field[r] = bad
            continue
        v_start = vals[_K_START] if (seen >> _K_START) & 1 else np.uint64(0)
        v_end = vals[_K_END] if (seen >> _K_END) & 1 else np.uint64(0)
        v_recv = vals[_K_RECV] if (seen >> _K_RECV) & 1 else np.uint64(0)
        # Flow start: the exporter's time; 0 means the exporter did not send it (e.g. sFlow),
        # so fall back to when goflow2 received the packet.
        t_ns = v_start if v_start > np.uint64(0) else v_recv
        if t_ns == np.uint64(0):
            status[r] = NO_TIME
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
        src_port[r] = vals[_K_SPORT] if (seen >> _K_SPORT) & 1 else np.uint64(0)
        dst_port[r] = vals[_K_DPORT]
        proto[r] = vals[_K_PROTO]
        nbytes[r] = vals[_K_BYTES]
        packets[r] = vals[_K_PACKETS] if (seen >> _K_PACKETS) & 1 else np.uint64(1)
        rate[r] = vals[_K_RATE] if (seen >> _K_RATE) & 1 else np.uint64(1)
        if (seen >> _K_FLAGS) & 1:
            initiator[r] = tcp_flags_initiator(int(vals[_K_PROTO]), int(vals[_K_FLAGS]))
        if (seen >> _K_NAME) & 1:
            name_start[r] = spans[2 * _K_NAME]
            name_end[r] = spans[2 * _K_NAME + 1]
    # Without these the scratch arrays were freed once their pointers were taken, and under
    # load another thread's allocation took their memory over (SIGSEGV in the demo).
    keep_alive(vals_mem)
    keep_alive(spans_mem)
    keep_alive(stack_mem)
    keep_alive(template_mem)
    return (
        status, field, value_start, value_end, start_ms, end_ms, src_hi, src_lo, dst_hi, dst_lo,
        src_port, dst_port, proto, nbytes, packets, rate, initiator, name_start, name_end,
    )  # fmt: skip
