"""Reference (slow) path: one goflow2 JSON record -> one flow row, or a precise rejection.

This is the specification of the goflow2 field rules; the numba fast path (``json_scan``) only
ever accepts records this path accepts, with identical values (a property test checks it).

Field rules:

* ``time_flow_start_ns`` / ``time_flow_end_ns`` / ``time_received_ns``: integers in
  ``0..2**63-1``. ``start_ms`` comes from the flow start; when that is missing or 0 (sFlow
  samples carry no flow times) it falls back to ``time_received_ns``; with neither the record
  is rejected. ``end_ms`` comes from the flow end (missing or 0: the start) and is clamped to
  ``>= start_ms`` because exporters with skewed clocks do emit end < start.
* ``src_addr`` / ``dst_addr``: IPv4 or IPv6 text (see ``ip_text``), required.
* ``proto``: a number 0..255, a goflow2 protocol name or a decimal string, required. Names that
  stand for no single number (``"unknown"``, ``""``, ...) are rejected unless the decoder was
  built with ``unknown_proto``.
* ``dst_port`` required, ``src_port`` optional (0): integers 0..65535.
* ``bytes`` required, ``packets`` optional (1): integers ``0..2**63-1``.
* ``sampling_rate`` optional (1): integer ``0..2**32-1``, kept as given; goflow2 writes 0 when
  the exporter did not say, which the detector treats like 1 (unsampled).
* ``tcp_flags`` optional (0): integer ``0..2**32-1`` (goflow2's uint32); a TCP record with
  SYN and not ACK names its source as the initiator (``decode.initiator``).

Booleans, floats (even integral ones), strings and null are wrong types for numeric fields.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import orjson

from beaconwatch.decode.common.initiator import tcp_flags_initiator
from beaconwatch.decode.common.ip_text import parse_ip_text
from beaconwatch.decode.common.protocols import protocol_number
from beaconwatch.decode.common.rows import (
    DETAIL_MAX,
    INT64_MAX,
    UINT32_MAX,
    FlowRow,
    InvalidError,
    Problem,
    ended_early,
    json_constant,
    show,
    uint,
)
from beaconwatch.domain.rejections import RejectReason

# Detail templates (field name, shown value), shared with the scanners' direct rejections.
OUT_OF_RANGE = "%s: out of range: %s"


def _int(obj: dict[str, Any], key: str, high: int, default: int | None) -> int | None:
    """A bounded non-negative integer field; ``default`` None means required."""
    if key not in obj:
        if default is None:
            raise InvalidError(RejectReason.MISSING_FIELD, f"missing {key}")
        return default
    return uint(obj[key], key, high)


def _address(obj: dict[str, Any], key: str) -> tuple[int, int]:
    if key not in obj:
        raise InvalidError(RejectReason.MISSING_FIELD, f"missing {key}")
    value = obj[key]
    if not isinstance(value, str):
        detail = f"{key}: expected a string, got {show(value)}"
        raise InvalidError(RejectReason.INVALID_FIELD, detail)
    halves = parse_ip_text(value)
    if halves is None:
        detail = f"{key}: not an IP address: {show(value)}"
        raise InvalidError(RejectReason.INVALID_ADDRESS, detail)
    return halves


def _proto(obj: dict[str, Any], unknown_proto: int | None) -> int:
    if "proto" not in obj:
        raise InvalidError(RejectReason.MISSING_FIELD, "missing proto")
    value = obj["proto"]
    if isinstance(value, str):
        number = protocol_number(value)
        if number is None and unknown_proto is not None:
            return unknown_proto
        if number is None:
            raise InvalidError(RejectReason.INVALID_FIELD, f"proto: unknown name {show(value)}")
        return number
    return _int(obj, "proto", 255, None) or 0


# The rule of each needed field alone, as `validate` applies it (for `field_problem`).
_FIELD_RULES: dict[str, Any] = {
    "time_flow_start_ns": lambda obj, _: _int(obj, "time_flow_start_ns", INT64_MAX, 0),
    "time_flow_end_ns": lambda obj, _: _int(obj, "time_flow_end_ns", INT64_MAX, 0),
    "time_received_ns": lambda obj, _: _int(obj, "time_received_ns", INT64_MAX, 0),
    "src_addr": lambda obj, _: _address(obj, "src_addr"),
    "dst_addr": lambda obj, _: _address(obj, "dst_addr"),
    "proto": _proto,
    "src_port": lambda obj, _: _int(obj, "src_port", 65535, 0),
    "dst_port": lambda obj, _: _int(obj, "dst_port", 65535, None),
    "bytes": lambda obj, _: _int(obj, "bytes", INT64_MAX, None),
    "packets": lambda obj, _: _int(obj, "packets", INT64_MAX, 1),
    "sampling_rate": lambda obj, _: _int(obj, "sampling_rate", UINT32_MAX, 1),
    "tcp_flags": lambda obj, _: _int(obj, "tcp_flags", UINT32_MAX, 0),
}

RULE_ORDER: tuple[str, ...] = tuple(_FIELD_RULES)  # the needed fields, in validate's order


# Upper bounds of the plain integer fields, as `_FIELD_RULES` applies them.
INT_HIGHS: dict[str, int] = {
    "time_flow_start_ns": INT64_MAX, "time_flow_end_ns": INT64_MAX,
    "time_received_ns": INT64_MAX, "src_port": 65535, "dst_port": 65535, "bytes": INT64_MAX,
    "packets": INT64_MAX, "sampling_rate": UINT32_MAX, "tcp_flags": UINT32_MAX,
}  # fmt: skip


_Key = TypeVar("_Key")
# Answers a decoder keeps about bad field values it has seen: a storm from a misconfigured
# exporter repeats the same bad values, and a hit costs a dict lookup instead of the rule.
MEMO_ENTRIES = 4096


def remember_problem(
    memo: dict[_Key, tuple[str, str] | None], key: _Key, problem: tuple[str, str] | None
) -> None:
    """Keep a field rule's answer in a decoder's memo, starting over once it is full."""
    if len(memo) >= MEMO_ENTRIES:
        memo.clear()
    memo[key] = problem


def field_problem(key: str, value: Any, unknown_proto: int | None = None) -> Problem | None:
    """What `validate` says about the needed field ``key`` holding ``value``, alone: its
    rejection, or None if the field passes."""
    high = INT_HIGHS.get(key)
    if high is not None and type(value) is int:  # the common case without the exception
        if 0 <= value <= high:
            return None
        detail = OUT_OF_RANGE % (key, show(value))
        return Problem(RejectReason.INVALID_FIELD, detail[:DETAIL_MAX])
    try:
        _FIELD_RULES[key]({key: value}, unknown_proto)
    except InvalidError as exc:
        return exc.problem
    return None


def validate(obj: dict[str, Any], unknown_proto: int | None = None) -> FlowRow | Problem:
    """Apply the field rules to a parsed record."""
    try:
        flow_start = _int(obj, "time_flow_start_ns", INT64_MAX, 0) or 0
        flow_end = _int(obj, "time_flow_end_ns", INT64_MAX, 0) or 0
        received = _int(obj, "time_received_ns", INT64_MAX, 0) or 0
        src_hi, src_lo = _address(obj, "src_addr")
        dst_hi, dst_lo = _address(obj, "dst_addr")
        proto = _proto(obj, unknown_proto)
        src_port = _int(obj, "src_port", 65535, 0) or 0
        dst_port = _int(obj, "dst_port", 65535, None) or 0
        nbytes = _int(obj, "bytes", INT64_MAX, None) or 0
        packets = _int(obj, "packets", INT64_MAX, 1)
        rate = _int(obj, "sampling_rate", UINT32_MAX, 1)
        flags = _int(obj, "tcp_flags", UINT32_MAX, 0) or 0
    except InvalidError as exc:
        return exc.problem
    # sFlow carries no flow times: fall back to the collector's receive time.
    start_ns = flow_start or received
    if start_ns == 0:
        return Problem(RejectReason.MISSING_FIELD, "missing time_flow_start_ns/time_received_ns")
    start_ms = start_ns // 1_000_000
    end_ms = max(flow_end // 1_000_000, start_ms) if flow_end else start_ms
    assert packets is not None and rate is not None  # defaults given
    return FlowRow(
        start_ms, end_ms, src_hi, src_lo, dst_hi, dst_lo, src_port, dst_port, proto, nbytes,
        packets, rate, tcp_flags_initiator(proto, flags),
    )  # fmt: skip


def decode_record(
    record: bytes, max_record_bytes: int, unknown_proto: int | None = None
) -> FlowRow | Problem:
    """Decode one raw record; never raises."""
    try:
        if len(record) > max_record_bytes:
            return Problem(RejectReason.OVERSIZED, f"{len(record)} bytes > {max_record_bytes}")
        try:
            text = bytes(record).decode("utf-8")
        except UnicodeDecodeError as exc:
            return Problem(RejectReason.INVALID_UTF8, f"invalid UTF-8 at byte {exc.start}")
        try:
            obj = orjson.loads(record)
        except orjson.JSONDecodeError as exc:
            if ended_early(exc):  # truncated: no lenient parser can read it either
                return Problem(RejectReason.INVALID_JSON, str(exc)[:DETAIL_MAX])
            return _explain_invalid_json(text, str(exc), unknown_proto)
        if not isinstance(obj, dict):
            return Problem(RejectReason.NOT_AN_OBJECT, f"JSON {type(obj).__name__}, not an object")
        return validate(obj, unknown_proto)
    except Exception as exc:  # the decoder contract: bad input never raises
        return Problem(RejectReason.INVALID_JSON, f"undecodable: {type(exc).__name__}")


def _explain_invalid_json(text: str, message: str, unknown_proto: int | None) -> Problem:
    """orjson refused the record. If the stdlib (which also reads NaN, Infinity and numbers
    beyond 64 bits) can parse it and a needed field is what is wrong, report that field;
    otherwise it is invalid JSON. The lenient result is only ever used to reject."""
    try:
        obj = json.loads(text, parse_constant=json_constant)
    except (ValueError, RecursionError):
        obj = None
    if isinstance(obj, dict):
        result = validate(obj, unknown_proto)
        if isinstance(result, Problem) and result.reason == RejectReason.INVALID_FIELD:
            return result
    return Problem(RejectReason.INVALID_JSON, message[:DETAIL_MAX])
