"""Shared by the object-per-flow JSON decoders (pmacct, ECS): field checks on a parsed object,
then address and time *text* resolved in bulk by numba kernels over one joined buffer.

A decoder turns each JSON object into a ``Pending`` row (numbers checked, address and time
text still unparsed) or a ``Problem``; ``resolve_many`` then parses all texts of a batch at
once (``ip_text.parse_ip_many``, ``time_text.parse_time_many``). ``resolve_one`` is the slow
twin (``parse_ip_text``, ``time_text.reference_ms``) that property tests compare against.

Per row the checks run in a fixed order, so both paths name the same first problem: the
decoder's field checks (presence, type, range), then source address, destination address,
start time, end time.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import orjson

from beaconwatch.decode.common.ip_text import parse_ip_many, parse_ip_text
from beaconwatch.decode.common.rows import (
    DETAIL_MAX,
    FlowRow,
    InvalidError,
    Problem,
    ended_early,
    json_constant,
    show,
)
from beaconwatch.decode.common.time_text import reference_ms, times_to_ms
from beaconwatch.domain.rejections import RejectReason


def text(value: Any, key: str) -> bytes:
    """A string field as UTF-8 bytes for the kernels (which accept ASCII only)."""
    if not isinstance(value, str):
        raise InvalidError(
            RejectReason.INVALID_FIELD, f"{key}: expected a string, got {show(value)}"
        )
    return value.encode("utf-8", "surrogatepass")


class Pending(NamedTuple):
    """One flow whose numbers are checked and whose address/time text is not parsed yet."""

    src: bytes
    dst: bytes
    start: bytes | int  # time text, or epoch ms already known
    end: bytes | int | None  # None: same as start
    src_port: int
    dst_port: int
    proto: int
    bytes: int
    packets: int
    sampling_rate: int
    keys: tuple[str, str, str, str]  # field names of src, dst, start, end (for details)
    initiator: int = 0  # `FlowBatch.initiator`, as the record says (`decode.initiator`)
    name_hash: int = 0  # `FlowBatch.name_hash` (`domain.names`), 0 = no name
    name: str | None = None  # its normalised text


def _address_problem(key: str, raw: bytes) -> Problem:
    value = raw.decode("utf-8", "replace")
    return Problem(
        RejectReason.INVALID_ADDRESS, f"{key}: not an IP address: {show(value)}"[:DETAIL_MAX]
    )


def _time_problem(key: str, raw: bytes) -> Problem:
    value = raw.decode("utf-8", "replace")
    return Problem(
        RejectReason.INVALID_FIELD, f"{key}: not a timestamp: {show(value)}"[:DETAIL_MAX]
    )


def resolve_one(row: Pending, *, allow_epoch: bool, naive_offset_min: int) -> FlowRow | Problem:
    """The slow reference resolution of one row."""
    src = parse_ip_text(row.src) if row.src.isascii() else None
    if src is None:
        return _address_problem(row.keys[0], row.src)
    dst = parse_ip_text(row.dst) if row.dst.isascii() else None
    if dst is None:
        return _address_problem(row.keys[1], row.dst)
    times: list[int] = []
    for value, key in ((row.start, row.keys[2]), (row.end, row.keys[3])):
        if value is None:
            times.append(times[0])
            continue
        if isinstance(value, int):
            times.append(value)
            continue
        ms = None
        if value.isascii():
            ms = reference_ms(value.decode("ascii"), allow_epoch=allow_epoch,
                              naive_offset_min=naive_offset_min)  # fmt: skip
        if ms is None:
            return _time_problem(key, value)
        times.append(ms)
    start_ms, end_ms = times[0], max(times[1], times[0])
    return FlowRow(
        start_ms, end_ms, src[0], src[1], dst[0], dst[1], row.src_port, row.dst_port, row.proto,
        row.bytes, row.packets, row.sampling_rate, row.initiator,
    )  # fmt: skip


_NUMERIC = ("src_port", "dst_port", "proto", "bytes", "packets", "sampling_rate")


def resolve_many(
    rows: Sequence[Pending | Problem], *, allow_epoch: bool, naive_offset_min: int
) -> tuple[dict[str, npt.NDArray[Any]], list[Problem | None]]:
    """Bulk resolution: FlowBatch columns (record_index excluded) for every row, and each
    row's first problem (None when the row is a flow; its column values are then valid)."""
    n = len(rows)
    pending = [r if isinstance(r, Pending) else None for r in rows]
    good = [p for p in pending if p is not None]
    addresses = [a for p in good for a in (p.src, p.dst)]
    lengths = np.fromiter(map(len, addresses), dtype=np.int64, count=len(addresses))
    ends = np.cumsum(lengths)
    buf = np.frombuffer(b"".join(addresses) or b"\0", dtype=np.uint8)
    ip_ok, ip_hi, ip_lo = parse_ip_many(buf, ends - lengths, ends)
    # Times: text goes through the kernel; known values are taken as they are.
    time_values = [v for p in good for v in (p.start, p.end)]
    time_texts = [v if isinstance(v, bytes) else b"" for v in time_values]
    t_ok, t_ms = times_to_ms(time_texts, allow_epoch=allow_epoch, naive_offset_min=naive_offset_min)
    t_given = np.array([v is None or isinstance(v, int) for v in time_values], dtype=np.bool_)
    known = np.array([v if isinstance(v, int) else 0 for v in time_values], dtype=np.int64)
    t_ms = np.where(t_given, known, t_ms)
    t_ok |= t_given
    m = len(good)
    start_ms = t_ms[0::2]
    end_given = np.array([p.end is not None for p in good], dtype=np.bool_)
    end_ms = np.where(end_given, np.maximum(t_ms[1::2], start_ms), start_ms)
    columns: dict[str, npt.NDArray[Any]] = {
        "start_ms": start_ms, "end_ms": end_ms,
        "src_hi": ip_hi[0::2], "src_lo": ip_lo[0::2], "dst_hi": ip_hi[1::2], "dst_lo": ip_lo[1::2],
    }  # fmt: skip
    for k, name in enumerate(_NUMERIC, start=4):
        columns[name] = np.fromiter((p[k] for p in good), dtype=np.uint64, count=m)
    columns["initiator"] = np.fromiter((p.initiator for p in good), dtype=np.uint8, count=m)
    columns["name_hash"] = np.fromiter((p.name_hash for p in good), dtype=np.uint64, count=m)
    columns["annotation"] = np.zeros(m, dtype=np.uint8)
    bad = ~(ip_ok[0::2] & ip_ok[1::2] & t_ok[0::2] & t_ok[1::2])
    problems: list[Problem | None] = [r if isinstance(r, Problem) else None for r in rows]
    where = np.flatnonzero([p is not None for p in pending])  # row index of each good row
    for j in np.flatnonzero(bad).tolist():
        p = good[j]
        if not ip_ok[2 * j]:
            problem = _address_problem(p.keys[0], p.src)
        elif not ip_ok[2 * j + 1]:
            problem = _address_problem(p.keys[1], p.dst)
        elif not t_ok[2 * j]:
            problem = _time_problem(p.keys[2], p.start if isinstance(p.start, bytes) else b"")
        else:
            problem = _time_problem(p.keys[3], p.end if isinstance(p.end, bytes) else b"")
        problems[int(where[j])] = problem
    # Scatter the good rows' values to their row positions (problem rows stay 0).
    full: dict[str, npt.NDArray[Any]] = {}
    for name, column in columns.items():
        out = np.zeros(n, dtype=column.dtype)
        out[where] = column
        full[name] = out
    return full, problems


def loads_object(raw: bytes, check: Callable[[dict[str, Any]], Any]) -> dict[str, Any] | Problem:
    """One JSON object (UTF-8 already checked). When orjson refuses it but the lenient stdlib
    reads it (NaN, Infinity, integers beyond 64 bits) and ``check`` finds an invalid field,
    that field is reported; otherwise it is invalid JSON. Never raises."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        lenient = None
        if not ended_early(exc):  # a truncated document cannot be read leniently either
            try:
                lenient = json.loads(raw.decode("utf-8"), parse_constant=json_constant)
            except (ValueError, RecursionError):
                lenient = None
        if isinstance(lenient, dict):
            result = check(lenient)
            if isinstance(result, Problem) and result.reason == RejectReason.INVALID_FIELD:
                return result
        return Problem(RejectReason.INVALID_JSON, str(exc)[:DETAIL_MAX])
    if not isinstance(obj, dict):
        return Problem(RejectReason.NOT_AN_OBJECT, f"JSON {type(obj).__name__}, not an object")
    return obj
