"""One record's outcome in every decoder family: a `FlowRow`, or a `Problem` that names why not.

The reference (per-record) paths of all formats speak this vocabulary, and they spell problems
the same way: a detail of at most ``DETAIL_MAX`` characters (it travels as a dead-letter header)
in which an offending value is shown by `show`, cut to 40 characters.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import orjson

from beaconwatch.domain.rejections import RejectReason

INT64_MAX = (1 << 63) - 1
UINT32_MAX = (1 << 32) - 1
DETAIL_MAX = 120
_SHOWN_MAX = 40


class FlowRow(NamedTuple):
    start_ms: int
    end_ms: int
    src_hi: int
    src_lo: int
    dst_hi: int
    dst_lo: int
    src_port: int
    dst_port: int
    proto: int
    bytes: int
    packets: int
    sampling_rate: int
    initiator: int = 0  # `FlowBatch.initiator`; 0 = the record does not say


class Problem(NamedTuple):
    reason: str  # one of RejectReason
    detail: str


class InvalidError(Exception):
    """Raised by a field check deep in a record's parse; carries the record's `Problem`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.problem = Problem(reason, detail[:DETAIL_MAX])


def show(value: Any) -> str:
    """A value as a rejection detail shows it: its repr, cut short."""
    text = repr(value)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 3] + "..."


def uint(value: Any, key: str, high: int) -> int:
    """A non-negative JSON integer up to ``high``; bools, floats, strings, null are wrong types."""
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and math.isnan(value):
            raise InvalidError(RejectReason.INVALID_FIELD, f"{key}: NaN")
        raise InvalidError(
            RejectReason.INVALID_FIELD, f"{key}: expected an integer, got {show(value)}"
        )
    if not 0 <= value <= high:
        raise InvalidError(RejectReason.INVALID_FIELD, f"{key}: out of range: {show(value)}")
    return value


def json_constant(name: str) -> float:
    """``parse_constant`` for the stdlib JSON parser: NaN/Infinity as floats, so that a field
    check names the field instead of the parser failing the whole record."""
    return float(name.lower().replace("infinity", "inf"))


def ended_early(exc: orjson.JSONDecodeError) -> bool:
    """orjson ran out of input inside the document (a truncated record). JSON with NaN,
    Infinity or other extensions cannot complete a document either, so a lenient re-parse
    (the stdlib's, to name a bad field) would fail too: skipping it saves its cost in a storm
    of truncated records. (The message of orjson 3.13; a unit test notices if it changes.)"""
    return exc.msg == "unexpected end of data"
