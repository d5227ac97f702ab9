"""Decoder for Zeek ``conn.log`` records as JSON lines (``zeek-json``).

Accepted shapes, one object per record:

* Zeek's JSON writer (``LogAscii::use_json=T``) and the json-streaming-logs package: a flat
  object with dotted keys (``"id.orig_h"``), unset fields left out (or ``null`` with
  ``json_include_unset_fields``); ``_path``/``_write_ts`` when present. A ``_path`` that is
  not a conn log (``dns``, ``http``, ...) is rejected: those records have 4-tuples too.
* The Zeek Kafka plugin, plain or with ``Kafka::tag_json=T`` (``{"conn": {...}}``).
* ``id`` as a nested object (``{"id": {"orig_h": ...}}``), as some pipelines unflatten it.

``ts``: epoch seconds as a number (``JSON::TS_EPOCH``), an ISO 8601 string
(``JSON::TS_ISO8601``), or integer milliseconds (``JSON::TS_MILLIS``; told apart from
seconds by size: an integer above 1e11, i.e. past the year 5138 in seconds, is milliseconds).
``duration`` is seconds as a number. Ports and counts must be JSON integers in range.
See ``zeek_common`` for how a connection maps to a flow.

ssl.log and http.log records (``_path`` ``ssl``/``http``, or the Kafka plugin's ``ssl``/``http``
tag) are name annotations, not connections (`state.name_notes`): ``ts``, ``id.orig_h``,
``id.resp_h``, ``id.resp_p`` and the name, ``server_name`` (SNI) or ``host`` (without a
``:port``; an IP literal is no name), become an annotation row (`FlowBatch.annotation`) that
names the pair's conn records. A record without a usable name (no SNI) gives no row and is
not rejected; one with a bad address or time is rejected as a conn record would be.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import orjson

from beaconwatch.decode.base import DecodeResult
from beaconwatch.decode.common.rows import INT64_MAX, InvalidError, json_constant, show, uint
from beaconwatch.decode.zeek.zeek_common import (
    DEFAULT_MAX_RECORD_BYTES,
    NAME_FIELDS,
    TCP,
    ZeekRows,
    iso_to_ms,
    note_name,
    proto_number,
)
from beaconwatch.domain.rejections import RejectReason

_MILLIS_ABOVE = 100_000_000_000  # integer ts above this are JSON::TS_MILLIS
_ID_KEYS = ("orig_h", "orig_p", "resp_h", "resp_p")


def _count(obj: dict[str, Any], key: str, high: int, required: bool = False) -> int | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise InvalidError(RejectReason.MISSING_FIELD, f"missing {key}")
        return None
    return uint(value, key, high)


def _seconds_ms(key: str, value: Any) -> int:
    """A non-negative number of seconds -> ms (rounded to microseconds, then floored)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidError(
            RejectReason.INVALID_FIELD, f"{key}: expected a number, got {show(value)}"
        )
    if not math.isfinite(value) or value < 0 or value * 1000 > INT64_MAX:
        raise InvalidError(RejectReason.INVALID_FIELD, f"{key}: out of range: {show(value)}")
    if isinstance(value, int):
        return value * 1000
    return round(value * 1_000_000) // 1000


def _ts_ms(obj: dict[str, Any]) -> int:
    value = obj.get("ts")
    if value is None:
        raise InvalidError(RejectReason.MISSING_FIELD, "missing ts")
    if isinstance(value, str):
        ms = iso_to_ms(value)
        if ms is None or not 0 <= ms <= INT64_MAX:
            raise InvalidError(RejectReason.INVALID_FIELD, f"ts: not a time: {show(value)}")
        return ms
    if isinstance(value, int) and not isinstance(value, bool) and value > _MILLIS_ABOVE:
        if value > INT64_MAX:
            raise InvalidError(RejectReason.INVALID_FIELD, f"ts: out of range: {show(value)}")
        return value
    return _seconds_ms("ts", value)


def _address(obj: dict[str, Any], key: str) -> bytes:
    value = obj.get(key)
    if value is None:
        raise InvalidError(RejectReason.MISSING_FIELD, f"missing {key}")
    if not isinstance(value, str):
        raise InvalidError(
            RejectReason.INVALID_FIELD, f"{key}: expected a string, got {show(value)}"
        )
    if not value.isascii():
        raise InvalidError(RejectReason.INVALID_ADDRESS, f"{key}: not an IP address: {show(value)}")
    return value.encode("ascii")


def _unwrap(obj: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Strip the Kafka plugin's tag and flatten a nested ``id``: (record, stream), the stream
    ``conn`` or one of `NAME_FIELDS`; reject other log streams."""
    stream = "conn"
    if len(obj) == 1:
        ((tag, inner),) = obj.items()
        if isinstance(inner, dict):
            if tag != "conn" and tag not in NAME_FIELDS:
                raise InvalidError(RejectReason.INVALID_FIELD, f"log stream {show(tag)}, not conn")
            obj, stream = inner, tag
    path = obj.get("_path")
    if isinstance(path, str):
        stream = next((s for s in NAME_FIELDS if path.startswith(s)), stream)
        if stream == "conn" and not path.startswith("conn"):
            raise InvalidError(RejectReason.INVALID_FIELD, f"_path {show(path)} is not a conn log")
    nested = obj.get("id")
    if isinstance(nested, dict):
        obj = {**obj, **{f"id.{k}": nested[k] for k in _ID_KEYS if k in nested}}
    return obj, stream


def _add_note(rows: ZeekRows, index: int, obj: dict[str, Any], stream: str) -> None:
    """An ssl/http record: an annotation row when it carries a usable name."""
    start_ms = _ts_ms(obj)
    src = _address(obj, "id.orig_h")
    dst = _address(obj, "id.resp_h")
    src_port = _count(obj, "id.orig_p", 65535) or 0
    dst_port = _count(obj, "id.resp_p", 65535, required=True) or 0
    h, name = note_name(obj.get(NAME_FIELDS[stream]))
    if name is not None:
        rows.add(index, start_ms, start_ms, src, dst, src_port, dst_port, TCP, 0, 0,
                 name_hash=h, name=name, annotation=True)  # fmt: skip


def _add(rows: ZeekRows, index: int, obj: dict[str, Any]) -> None:
    obj, stream = _unwrap(obj)
    if stream != "conn":
        _add_note(rows, index, obj, stream)
        return
    start_ms = _ts_ms(obj)
    src = _address(obj, "id.orig_h")
    dst = _address(obj, "id.resp_h")
    proto_value = obj.get("proto")
    if proto_value is None:
        raise InvalidError(RejectReason.MISSING_FIELD, "missing proto")
    if not isinstance(proto_value, str):
        raise InvalidError(
            RejectReason.INVALID_FIELD, f"proto: expected a string, got {show(proto_value)}"
        )
    ip_proto = _count(obj, "ip_proto", 255)
    proto = proto_number(proto_value, ip_proto)
    if proto is None:
        raise InvalidError(RejectReason.INVALID_FIELD, f"proto: unknown {show(proto_value)}")
    src_port = _count(obj, "id.orig_p", 65535) or 0
    dst_port = _count(obj, "id.resp_p", 65535, required=True) or 0
    duration = obj.get("duration")
    end_ms = start_ms if duration is None else start_ms + _seconds_ms("duration", duration)
    if end_ms > INT64_MAX:
        raise InvalidError(RejectReason.INVALID_FIELD, "ts + duration: out of range")
    ip_bytes = _count(obj, "orig_ip_bytes", INT64_MAX)
    payload = _count(obj, "orig_bytes", INT64_MAX)
    nbytes = ip_bytes if ip_bytes is not None else (payload or 0)
    packets = _count(obj, "orig_pkts", INT64_MAX)
    rows.add(
        index, start_ms, end_ms, src, dst, src_port, dst_port, proto, nbytes,
        1 if packets is None else packets,
    )  # fmt: skip


def _check(rows: ZeekRows, index: int, obj: Any) -> None:
    if not isinstance(obj, dict):
        rows.reject(index, RejectReason.NOT_AN_OBJECT, f"JSON {type(obj).__name__}, not an object")
        return
    try:
        _add(rows, index, obj)
    except InvalidError as exc:
        rows.reject(index, *exc.problem)


class ZeekJsonDecoder:
    """``zeek-json``: Zeek conn.log JSON records -> FlowBatch (one flow per connection)."""

    name = "zeek-json"

    def __init__(self, *, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        if max_record_bytes < 1:
            raise ValueError("max_record_bytes must be >= 1")
        self.max_record_bytes = max_record_bytes

    def decode(self, records: Sequence[bytes]) -> DecodeResult:
        rows = ZeekRows()
        for index, record in enumerate(records):
            if len(record) > self.max_record_bytes:
                detail = f"{len(record)} bytes > {self.max_record_bytes}"
                rows.reject(index, RejectReason.OVERSIZED, detail)
                continue
            try:
                obj = orjson.loads(record)
            except orjson.JSONDecodeError as exc:
                self._explain(rows, index, bytes(record), str(exc))
                continue
            _check(rows, index, obj)
        return rows.finish()

    @staticmethod
    def _explain(rows: ZeekRows, index: int, record: bytes, message: str) -> None:
        """orjson refused the record: invalid UTF-8, or JSON only the lenient stdlib reads
        (NaN, numbers beyond 64 bits) whose field is then reported, or invalid JSON."""
        try:
            text = record.decode("utf-8")
        except UnicodeDecodeError as exc:
            rows.reject(index, RejectReason.INVALID_UTF8, f"invalid UTF-8 at byte {exc.start}")
            return
        try:
            obj = json.loads(text, parse_constant=json_constant)
        except (ValueError, RecursionError):
            obj = None
        if isinstance(obj, dict):
            probe = ZeekRows()
            _check(probe, index, obj)
            if probe.rejections and probe.rejections[0].reason == RejectReason.INVALID_FIELD:
                rows.rejections.append(probe.rejections[0])
                return
        rows.reject(index, RejectReason.INVALID_JSON, message)
