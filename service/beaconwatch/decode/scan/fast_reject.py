"""Bulk rejection of records the scanners did not accept, for failures that need no parse.

The reference paths decide every record the numba scanners pass on, one Python call each,
and their first checks need nothing but the bytes: is the record valid UTF-8 (JSON formats),
is its varint length prefix well formed and equal to the rest (goflow2-pb). In a storm of
garbage most bad records fail right there, so these kernels answer those checks for the whole
batch at once, with exactly the reason and detail the reference path gives (a unit test
compares them); records that pass still go through the reference path. Problems are plain
``(reason, detail)`` tuples here: a storm makes one per record, and a literal tuple costs a
tenth of a named tuple's Python-level constructor.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from numba import njit

from beaconwatch.decode.common.rows import DETAIL_MAX, Problem
from beaconwatch.domain.dtypes import I64, U8
from beaconwatch.domain.rejections import RejectReason

Known = dict[int, tuple[str, str]]  # row -> (reason, detail)

FRAME_OK, FRAME_EMPTY, FRAME_BAD_VARINT, FRAME_LENGTH = 0, 1, 2, 3
_MAX_VARINT_BYTES = 10
_EMPTY = Problem(RejectReason.INVALID_PROTOBUF, "empty record, no length prefix")
_BAD_VARINT = Problem(RejectReason.INVALID_PROTOBUF, "malformed varint length prefix")


@njit(cache=True, nogil=True)
def utf8_error_at(buf: U8, start: int, end: int) -> int:
    """Offset (from ``start``) of the first byte of the first ill-formed UTF-8 sequence in
    ``buf[start:end]``, or -1 if it is valid: ``UnicodeDecodeError.start`` of CPython."""
    i = start
    while i < end:
        c = buf[i]
        if c < 0x80:
            i += 1
            continue
        # Continuation bytes after the lead, and the range of the first one (RFC 3629).
        lo, hi = 0x80, 0xBF
        if 0xC2 <= c <= 0xDF:
            n = 1
        elif c == 0xE0:
            n, lo = 2, 0xA0
        elif c == 0xED:
            n, hi = 2, 0x9F
        elif 0xE1 <= c <= 0xEF:
            n = 2
        elif c == 0xF0:
            n, lo = 3, 0x90
        elif c == 0xF4:
            n, hi = 3, 0x8F
        elif 0xF1 <= c <= 0xF3:
            n = 3
        else:
            return i - start
        if i + 1 >= end or not lo <= buf[i + 1] <= hi:
            return i - start
        for k in range(2, n + 1):
            if i + k >= end or not 0x80 <= buf[i + k] <= 0xBF:
                return i - start
        i += n + 1
    return -1


@njit(cache=True, nogil=True)
def utf8_errors(buf: U8, starts: I64, ends: I64, rows: I64) -> I64:
    """`utf8_error_at` for the records ``rows``."""
    out = np.empty(rows.shape[0], dtype=np.int64)
    for k in range(rows.shape[0]):
        r = rows[k]
        out[k] = utf8_error_at(buf, starts[r], ends[r])
    return out


@njit(cache=True, nogil=True)
def frame_errors(
    buf: U8, starts: I64, ends: I64, rows: I64
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.uint64], I64]:
    """Length-prefix check of the records ``rows``: (code, prefix value, bytes after it)."""
    n = rows.shape[0]
    code = np.zeros(n, dtype=np.int8)
    length = np.zeros(n, dtype=np.uint64)
    after = np.zeros(n, dtype=np.int64)
    for k in range(n):
        start, end = starts[rows[k]], ends[rows[k]]
        if start == end:
            code[k] = FRAME_EMPTY
            continue
        value = np.uint64(0)
        body_at = -1
        for j in range(_MAX_VARINT_BYTES):
            if start + j >= end:
                break
            byte = np.uint64(buf[start + j])
            value |= (byte & np.uint64(0x7F)) << np.uint64(7 * j)  # bits past 64 drop off
            if byte < 0x80:
                body_at = start + j + 1
                break
        if body_at < 0:
            code[k] = FRAME_BAD_VARINT
            continue
        after[k] = end - body_at
        length[k] = value
        if value != np.uint64(end - body_at):
            code[k] = FRAME_LENGTH
    return code, length, after


def utf8_problems(
    records: Sequence[bytes], buf: U8, starts: I64, ends: I64, rows: Sequence[int]
) -> Known:
    """{row: invalid_utf8 Problem} for the ``rows`` that are not valid UTF-8 (``records``
    laid out in ``buf[starts[i]:ends[i]]``)."""
    # bytes.isascii is a vectorised C loop: most records are ASCII, and then valid.
    rows = [r for r in rows if not (isinstance(rec := records[r], bytes) and rec.isascii())]
    if not rows:
        return {}
    index = np.asarray(rows, dtype=np.int64)
    at = utf8_errors(buf, starts, ends, index)
    bad = np.flatnonzero(at >= 0)
    reason = RejectReason.INVALID_UTF8
    return {
        row: (reason, f"invalid UTF-8 at byte {pos}")
        for row, pos in zip(index[bad].tolist(), at[bad].tolist(), strict=True)
    }


def frame_problems(buf: U8, starts: I64, ends: I64, rows: Sequence[int]) -> Known:
    """{row: invalid_protobuf Problem} for the ``rows`` whose length prefix is wrong."""
    if not rows:
        return {}
    index = np.asarray(rows, dtype=np.int64)
    code, length, after = frame_errors(buf, starts, ends, index)
    out: Known = {}
    bad = np.flatnonzero(code != FRAME_OK)
    columns = (index[bad].tolist(), code[bad].tolist(), length[bad].tolist(), after[bad].tolist())
    reason = RejectReason.INVALID_PROTOBUF
    for row, kind, prefix, rest in zip(*columns, strict=True):
        if kind == FRAME_LENGTH:
            out[row] = (reason, f"length prefix {prefix} != {rest} bytes after it"[:DETAIL_MAX])
        else:
            out[row] = _EMPTY if kind == FRAME_EMPTY else _BAD_VARINT
    return out
