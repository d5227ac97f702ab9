"""Decoder for pmacct (nfacctd / sfacctd / pmacctd / uacctd) Kafka plugin JSON output.

Shape (pmacct ``src/plugin_cmn_json.c``, ``src/util.c``; see tests/fixtures/pmacct/SOURCE.md):
one flat object per aggregate, keys by primitive: ``ip_src``/``ip_dst`` (``src_host``/
``dst_host``), ``port_src``/``port_dst``, ``ip_proto`` (a name from pmacct's table such as
``"tcp"``, or the number as a string with ``*_num_protos``), ``timestamp_start``/
``timestamp_end``/``timestamp_arrival`` (strings), ``packets``/``bytes`` (integers),
``sampling_rate``, ``event_type``, ``writer_id`` and many others we ignore. With
``kafka_multi_values`` several objects share one Kafka record, each followed by ``\\n``.

Field rules (per object):

* ``ip_src``/``ip_dst``: IPv4/IPv6 text, required.
* ``ip_proto``: required; pmacct names (case-insensitive), IANA keywords, a decimal string or
  an integer 0..255.
* ``port_dst`` required, ``port_src`` optional (0): integers 0..65535. ``port_dst`` is required
  because beaconwatch keys pairs by it: an ``aggregate`` without ``dst_port`` is a
  configuration error worth seeing in the dead-letter topic, not a silent port 0.
* ``bytes`` required, ``packets`` optional (1): integers 0..2**63-1; ``sampling_rate``
  optional (1), 0..2**32-1, kept as given.
* ``tcp_flags`` optional (0): the decimal string pmacct writes (or an integer), 0..2**32-1;
  a TCP flow with SYN and not ACK names its source as the initiator (``decode.initiator``).
* Times: ``timestamp_start``, falling back to ``timestamp_arrival`` (pmacctd/sfacctd have no
  flow start) when missing or zero (pmacct writes ``0000-00-00 00:00:00`` / ``0.000000`` for an
  unset time); with neither the object is rejected. ``timestamp_end`` optional (the start),
  clamped to >= start. Values: ``YYYY-MM-DD HH:MM:SS[.ffffff]``, the RFC 3339 form of
  ``timestamps_rfc3339``, epoch text of ``timestamps_since_epoch`` (``"1700000000.123456"``),
  or a JSON number of epoch seconds. **Assumption**: a date-time without a zone is UTC
  (``timestamps_utc: true``, or a collector running in UTC); pmacct's default writes the
  collector's local time without saying so: set ``naive_utc_offset_min`` to its offset or,
  better, configure ``timestamps_since_epoch: true`` or ``timestamps_rfc3339: true``.
* ``event_type`` ``purge_init``/``purge_close`` objects (``kafka_markers``) are not flows: they
  are skipped; a record of markers only is rejected as ``missing_field``.

A Kafka record is the unit of dead-lettering: if any object of a record is bad, the whole
record is rejected (reason and detail of its first bad object, prefixed ``object k/n``) and
none of its flows is kept, so the dead-letter topic holds it intact for replay.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from beaconwatch.decode.base import DecodeResult
from beaconwatch.decode.common.initiator import tcp_flags_initiator
from beaconwatch.decode.common.protocols import PROTOCOL_NUMBERS, protocol_number
from beaconwatch.decode.common.rows import (
    DETAIL_MAX,
    INT64_MAX,
    UINT32_MAX,
    FlowRow,
    InvalidError,
    Problem,
    show,
    uint,
)
from beaconwatch.decode.common.time_text import MAX_EPOCH_S
from beaconwatch.decode.parsed.flow_rows import (
    Pending,
    loads_object,
    resolve_many,
    resolve_one,
    text,
)  # fmt: skip
from beaconwatch.domain.flows import FLOW_COLUMNS, FlowBatch
from beaconwatch.domain.rejections import Rejection, RejectReason

DEFAULT_MAX_RECORD_BYTES = 1024 * 1024  # kafka_multi_values buffers can hold many objects

# pmacct's own protocol names (``_protocols`` in src/pmacct-data.h) where they differ from or
# add to the IANA keywords; numbers without a name are printed as decimal strings.
_PMACCT_NAMES = {
    "ip": 0, "ipv6-crypt": 50, "ipv6-auth": 51, "mobile": 55, "ospf": 89, "isis": 124,
    "ipcomp": 108,
}  # fmt: skip
_NAMES = {name.lower(): number for name, number in PROTOCOL_NUMBERS.items()} | _PMACCT_NAMES
_MARKERS = ("purge_init", "purge_close")
_TIME_KEYS = ("timestamp_start", "timestamp_arrival")


def _proto(value: Any) -> int:
    if isinstance(value, str):
        number = _NAMES.get(value.lower())
        if number is None:
            number = protocol_number(value)
        if number is None or value.lower() in ("unknown", "unassigned", "experimental"):
            raise InvalidError(RejectReason.INVALID_FIELD, f"ip_proto: unknown name {show(value)}")
        return number
    return uint(value, "ip_proto", 255)


def _time(value: Any, key: str) -> bytes | int | None:
    """A time value: text for the kernels, epoch ms from a JSON number, None when zero."""
    if isinstance(value, str):
        if value.startswith("0000-00-00") or (value.strip("0.") == "" and value[:1] == "0"):
            return None  # pmacct's "unset" time
        return text(value, key)
    if isinstance(value, float) and math.isfinite(value) and 0 <= value <= MAX_EPOCH_S:
        return math.floor(value * 1000) or None
    if isinstance(value, float) and math.isnan(value):
        raise InvalidError(RejectReason.INVALID_FIELD, f"{key}: NaN")
    return uint(value, key, MAX_EPOCH_S) * 1000 or None


def _tcp_flags(value: Any) -> int:
    """pmacct writes the flags as a decimal string (``"24"``)."""
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit() and len(value) <= 10):
            detail = f"tcp_flags: not a number: {show(value)}"
            raise InvalidError(RejectReason.INVALID_FIELD, detail)
        value = int(value)
    return uint(value, "tcp_flags", UINT32_MAX)


def flow_of(obj: dict[str, Any]) -> Pending | Problem | None:
    """The field rules for one pmacct object; None for a marker (not a flow)."""
    if obj.get("event_type") in _MARKERS:
        return None
    try:
        for key in ("ip_src", "ip_dst", "ip_proto", "port_dst", "bytes"):
            if key not in obj:
                raise InvalidError(RejectReason.MISSING_FIELD, f"missing {key}")
        src = text(obj["ip_src"], "ip_src")
        dst = text(obj["ip_dst"], "ip_dst")
        proto = _proto(obj["ip_proto"])
        src_port = uint(obj.get("port_src", 0), "port_src", 65535)
        dst_port = uint(obj["port_dst"], "port_dst", 65535)
        nbytes = uint(obj["bytes"], "bytes", INT64_MAX)
        packets = uint(obj.get("packets", 1), "packets", INT64_MAX)
        rate = uint(obj.get("sampling_rate", 1), "sampling_rate", UINT32_MAX)
        flags = _tcp_flags(obj.get("tcp_flags", 0))
        start: bytes | int | None = None
        start_key = _TIME_KEYS[0]
        for start_key in _TIME_KEYS:
            if start_key in obj and (start := _time(obj[start_key], start_key)) is not None:
                break
        if start is None:
            raise InvalidError(RejectReason.MISSING_FIELD, "missing timestamp_start/_arrival")
        end = _time(obj["timestamp_end"], "timestamp_end") if "timestamp_end" in obj else None
    except InvalidError as exc:
        return exc.problem
    keys = ("ip_src", "ip_dst", start_key, "timestamp_end")
    initiator = tcp_flags_initiator(proto, flags)
    return Pending(
        src, dst, start, end, src_port, dst_port, proto, nbytes, packets, rate, keys, initiator
    )


def _objects(record: bytes, max_record_bytes: int) -> list[Pending | Problem | None] | Problem:
    """Split and parse a record's objects; a Problem for the record as a whole."""
    if len(record) > max_record_bytes:
        return Problem(RejectReason.OVERSIZED, f"{len(record)} bytes > {max_record_bytes}")
    try:
        bytes(record).decode("utf-8")
    except UnicodeDecodeError as exc:
        return Problem(RejectReason.INVALID_UTF8, f"invalid UTF-8 at byte {exc.start}")
    lines = [line for line in bytes(record).split(b"\n") if line.strip()]
    if not lines:
        return Problem(RejectReason.INVALID_JSON, "empty record")
    out: list[Pending | Problem | None] = []
    for line in lines:
        obj = loads_object(line, flow_of)
        out.append(obj if isinstance(obj, Problem) else flow_of(obj))
    return out


def _objects_safe(record: bytes, max_record_bytes: int) -> list[Pending | Problem | None] | Problem:
    try:
        return _objects(record, max_record_bytes)
    except Exception as exc:  # the decoder contract: bad input never raises
        return Problem(RejectReason.INVALID_JSON, f"undecodable: {type(exc).__name__}")


def _record_problem(
    items: Sequence[Pending | Problem | None], problems: Sequence[Any]
) -> Problem | None:
    """The record's first bad object, or markers only; None when the record is good."""
    for k, problem in enumerate(problems):
        if problem is not None:
            if len(items) == 1:
                return problem  # type: ignore[no-any-return]
            detail = f"object {k + 1}/{len(items)}: {problem.detail}"
            return Problem(problem.reason, detail[:DETAIL_MAX])
    if all(item is None for item in items):
        return Problem(
            RejectReason.MISSING_FIELD, "pmacct markers only (event_type purge_init/close)"
        )
    return None


class PmacctJsonDecoder:
    """``pmacct-json``: pmacct Kafka plugin JSON -> FlowBatch (several flows per record)."""

    name = "pmacct-json"

    def __init__(
        self, *, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES, naive_utc_offset_min: int = 0
    ) -> None:
        """``naive_utc_offset_min``: minutes east of UTC of date-times written without a zone
        (pmacct's local time when ``timestamps_utc`` is off)."""
        if max_record_bytes < 1:
            raise ValueError("max_record_bytes must be >= 1")
        if not -1439 <= naive_utc_offset_min <= 1439:
            raise ValueError("naive_utc_offset_min must be within -1439..1439")
        self.max_record_bytes = max_record_bytes
        self.naive_utc_offset_min = naive_utc_offset_min

    def decode(self, records: Sequence[bytes]) -> DecodeResult:
        rejections: list[Rejection] = []
        rows: list[Pending | Problem] = []
        row_record: list[int] = []
        per_record: list[tuple[int, list[Pending | Problem | None], int]] = []
        for index, record in enumerate(records):
            items = _objects_safe(record, self.max_record_bytes)
            if isinstance(items, Problem):
                rejections.append(Rejection(index, items.reason, items.detail))
                continue
            per_record.append((index, items, len(rows)))
            for item in items:
                if item is not None:
                    rows.append(item)
                    row_record.append(index)
        columns, problems = resolve_many(
            rows, allow_epoch=True, naive_offset_min=self.naive_utc_offset_min
        )
        keep = np.zeros(len(rows), dtype=np.bool_)
        for index, items, first in per_record:
            # Align the row problems with the record's objects (markers have no row).
            count = sum(item is not None for item in items)
            row_problems = iter(problems[first : first + count])
            aligned = [None if item is None else next(row_problems) for item in items]
            problem = _record_problem(items, aligned)
            if problem is not None:
                rejections.append(Rejection(index, problem.reason, problem.detail))
            else:
                keep[first : first + count] = True
        rejections.sort(key=lambda r: r.record_index)
        picked: dict[str, Any] = {
            name: columns[name][keep].astype(FLOW_COLUMNS[name], copy=False)
            for name in FLOW_COLUMNS
            if name != "record_index"
        }
        record_index = np.array(row_record, dtype=np.int64)[keep]
        return DecodeResult(FlowBatch(**picked, record_index=record_index), rejections)


def decode_record(
    record: bytes, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES, naive_utc_offset_min: int = 0
) -> list[FlowRow] | Problem:
    """The slow reference path for one record; never raises."""
    try:
        items = _objects_safe(record, max_record_bytes)
        if isinstance(items, Problem):
            return items
        resolved = [
            None if item is None or isinstance(item, Problem) else
            resolve_one(item, allow_epoch=True, naive_offset_min=naive_utc_offset_min)
            for item in items
        ]  # fmt: skip
        problems = [
            item if isinstance(item, Problem) else r if isinstance(r, Problem) else None
            for item, r in zip(items, resolved, strict=True)
        ]
        problem = _record_problem(items, problems)
        if problem is not None:
            return problem
        return [r for r in resolved if isinstance(r, FlowRow)]
    except Exception as exc:  # the decoder contract: bad input never raises
        return Problem(RejectReason.INVALID_JSON, f"undecodable: {type(exc).__name__}")
