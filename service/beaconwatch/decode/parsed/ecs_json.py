"""Decoder for ECS flow documents as Filebeat's ``netflow`` input and the Elastic Agent NetFlow
integration write them (one JSON document per Kafka record).

Shape (elastic/beats ``x-pack/filebeat/input/netflow/convert.go`` and its golden test data;
ECS field reference; see tests/fixtures/ecs/SOURCE.md): nested objects ``source``,
``destination``, ``network``, ``event``, ``netflow`` plus ``@timestamp``. Documents that went
through other shippers may carry dotted keys (``"source.ip"``) instead, or a mix; both are
read (at each level the nested object is tried first, then the dotted key).

Field rules:

* ``source.ip``/``destination.ip``: IPv4/IPv6 text, required.
* ``destination.port``/``source.port``: integers 0..65535, optional (0): Filebeat leaves them
  out when the exporter sent no transport ports (ICMP, GRE, ...).
* Protocol, required: ``network.iana_number`` (Filebeat writes an integer, ECS declares a
  keyword, so a decimal string is read too), else ``netflow.protocol_identifier``, else the
  ``network.transport`` name (``tcp``, ``udp``, ``icmp``, ``ipv6-icmp``, any IANA keyword in
  any case, or Filebeat's ``unknown (N)``).
* Bytes/packets are the source -> destination direction of the document: ``source.bytes``
  (Filebeat: the initiator's octet count) else ``network.bytes`` (which Filebeat makes the sum
  of both directions when the exporter sends biflows); required. ``source.packets`` else
  ``network.packets`` else 1. Integers 0..2**63-1.
* ``sampling_rate``: ``netflow.sampling_interval`` else ``netflow.sampling_packet_interval``
  else 1, 0..2**32-1, kept as given.
* Start: ``event.start`` (Filebeat sets it from NetFlow uptimes), else
  ``netflow.flow_start_{milliseconds,microseconds,nanoseconds,seconds}`` (IPFIX absolute
  times), else ``@timestamp`` (the export packet time); required. End: ``event.end`` else
  ``netflow.flow_end_*`` else the start; clamped to >= start. Values are RFC 3339 text (up to 9
  fraction digits, ``Z`` or an offset; without a zone: UTC) or integers of epoch milliseconds
  (Elasticsearch's ``epoch_millis``).
* Initiator (``decode.initiator``): ``netflow.biflow_direction`` (IPFIX IE 239, 0..255) 1 or
  2 says which end started the flow; else ``netflow.tcp_control_bits`` (IE 6, 0..2**32-1) of
  a TCP flow with SYN and not ACK names the source. Both optional (0: not stated).
  ``network.direction`` is not used: Filebeat derives it from its own internal-networks
  setting (inbound/outbound/...), which says where the ends are, not who started.
* Name (`FlowBatch.name_hash`), optional: the first usable of ``tls.client.server_name`` (the
  SNI), ``destination.domain``, ``url.domain`` (`domain.names.normalise`: lower case, no
  trailing dot; empty, over 253 characters, spaces, control characters: not usable). A name
  that is not usable leaves the flow unnamed; it never rejects the flow.
* JSON ``null`` counts as absent (Elastic's convention).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from beaconwatch.decode.base import DecodeResult
from beaconwatch.decode.common.initiator import biflow_initiator, tcp_flags_initiator
from beaconwatch.decode.common.protocols import PROTOCOL_NUMBERS, protocol_number
from beaconwatch.decode.common.rows import (
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
from beaconwatch.domain.names import NO_NAME, hash_of
from beaconwatch.domain.rejections import Rejection, RejectReason

DEFAULT_MAX_RECORD_BYTES = 64 * 1024
_NAMES = {name.lower(): number for name, number in PROTOCOL_NUMBERS.items()}
_UNKNOWN_N = re.compile(r"unknown \((\d{1,3})\)")
_ABSENT = object()

_START = ("event.start", "netflow.flow_start_milliseconds", "netflow.flow_start_microseconds",
          "netflow.flow_start_nanoseconds", "netflow.flow_start_seconds", "@timestamp")  # fmt: skip
_NAME = (("tls", "client", "server_name"), ("destination", "domain"), ("url", "domain"))
_END = ("event.end", "netflow.flow_end_milliseconds", "netflow.flow_end_microseconds",
        "netflow.flow_end_nanoseconds", "netflow.flow_end_seconds")  # fmt: skip


def lookup(obj: Any, parts: Sequence[str]) -> Any:
    """The value at a dotted path through nested objects and/or dotted keys, or ``_ABSENT``."""
    if not parts:
        return obj
    if not isinstance(obj, dict):
        return _ABSENT
    if len(parts) == 2:  # fast path: the nested shape Filebeat writes
        node = obj.get(parts[0])
        if isinstance(node, dict) and (found := node.get(parts[1])) is not None:
            return found
    for k in range(1, len(parts) + 1):
        key = parts[0] if k == 1 else ".".join(parts[:k])
        if key in obj:
            found = lookup(obj[key], parts[k:])
            if found is not _ABSENT and found is not None:
                return found
    return _ABSENT


@functools.cache
def _split(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def _first(obj: dict[str, Any], paths: Sequence[str]) -> tuple[str, Any]:
    for path in paths:
        value = lookup(obj, _split(path))
        if value is not _ABSENT:
            return path, value
    return paths[0], _ABSENT


def _proto(obj: dict[str, Any]) -> int:
    key, value = _first(obj, ("network.iana_number", "netflow.protocol_identifier"))
    if value is not _ABSENT:
        if isinstance(value, str):
            number = protocol_number(value)
            if number is None:
                raise InvalidError(
                    RejectReason.INVALID_FIELD, f"{key}: not a number 0..255: {show(value)}"
                )
            return number
        return uint(value, key, 255)
    value = lookup(obj, ("network", "transport"))
    if value is _ABSENT:
        raise InvalidError(RejectReason.MISSING_FIELD, "missing network.iana_number/transport")
    if not isinstance(value, str):
        raise InvalidError(
            RejectReason.INVALID_FIELD, f"network.transport: expected a string, got {show(value)}"
        )
    number = _NAMES.get(value.lower())
    if number is None and (m := _UNKNOWN_N.fullmatch(value)) and int(m.group(1)) <= 255:
        number = int(m.group(1))
    if number is None:
        raise InvalidError(
            RejectReason.INVALID_FIELD, f"network.transport: unknown name {show(value)}"
        )
    return number


def _time(value: Any, key: str) -> bytes | int:
    if isinstance(value, str):
        return text(value, key)
    return uint(value, key, MAX_EPOCH_S * 1000)


def _uint_at(obj: dict[str, Any], paths: Sequence[str], high: int, default: int | None) -> int:
    key, value = _first(obj, paths)
    if value is _ABSENT:
        if default is None:
            raise InvalidError(RejectReason.MISSING_FIELD, f"missing {'/'.join(paths)}")
        return default
    return uint(value, key, high)


def _text_at(obj: dict[str, Any], path: str) -> bytes:
    value = lookup(obj, _split(path))
    if value is _ABSENT:
        raise InvalidError(RejectReason.MISSING_FIELD, f"missing {path}")
    return text(value, path)


def _name(obj: dict[str, Any]) -> tuple[int, str | None]:
    """The flow's name (`domain.names`): the first usable of the fields in `_NAME`."""
    for parts in _NAME:
        value = lookup(obj, parts)
        if value is not _ABSENT:
            h, name = hash_of(value)
            if h != NO_NAME:
                return h, name
    return NO_NAME, None


def flow_of(obj: dict[str, Any]) -> Pending | Problem:
    """The field rules for one ECS document."""
    try:
        src = _text_at(obj, "source.ip")
        dst = _text_at(obj, "destination.ip")
        proto = _proto(obj)
        src_port = _uint_at(obj, ("source.port",), 65535, 0)
        dst_port = _uint_at(obj, ("destination.port",), 65535, 0)
        nbytes = _uint_at(obj, ("source.bytes", "network.bytes"), INT64_MAX, None)
        packets = _uint_at(obj, ("source.packets", "network.packets"), INT64_MAX, 1)
        rate = _uint_at(
            obj, ("netflow.sampling_interval", "netflow.sampling_packet_interval"), UINT32_MAX, 1
        )
        start_key, start_value = _first(obj, _START)
        if start_value is _ABSENT:
            raise InvalidError(RejectReason.MISSING_FIELD, "missing event.start/@timestamp")
        start = _time(start_value, start_key)
        end_key, end_value = _first(obj, _END)
        end = None if end_value is _ABSENT else _time(end_value, end_key)
        flags = _uint_at(obj, ("netflow.tcp_control_bits",), UINT32_MAX, 0)
        biflow = _uint_at(obj, ("netflow.biflow_direction",), 255, 0)
    except InvalidError as exc:
        return exc.problem
    keys = ("source.ip", "destination.ip", start_key, end_key)
    # The exporter's biflowDirection, when it states one, else the TCP flags.
    initiator = biflow_initiator(biflow) or tcp_flags_initiator(proto, flags)
    name_hash, name = _name(obj)
    return Pending(
        src, dst, start, end, src_port, dst_port, proto, nbytes, packets, rate, keys, initiator,
        name_hash, name,
    )  # fmt: skip


def _document(record: bytes, max_record_bytes: int) -> Pending | Problem:
    try:
        if len(record) > max_record_bytes:
            return Problem(RejectReason.OVERSIZED, f"{len(record)} bytes > {max_record_bytes}")
        try:
            bytes(record).decode("utf-8")
        except UnicodeDecodeError as exc:
            return Problem(RejectReason.INVALID_UTF8, f"invalid UTF-8 at byte {exc.start}")
        obj = loads_object(bytes(record), flow_of)
        return obj if isinstance(obj, Problem) else flow_of(obj)
    except Exception as exc:  # the decoder contract: bad input never raises
        return Problem(RejectReason.INVALID_JSON, f"undecodable: {type(exc).__name__}")


class EcsJsonDecoder:
    """``ecs-json``: Filebeat / Elastic Agent NetFlow ECS documents -> FlowBatch."""

    name = "ecs-json"

    def __init__(self, *, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        if max_record_bytes < 1:
            raise ValueError("max_record_bytes must be >= 1")
        self.max_record_bytes = max_record_bytes

    def decode(self, records: Sequence[bytes]) -> DecodeResult:
        rows = [_document(record, self.max_record_bytes) for record in records]
        columns, problems = resolve_many(rows, allow_epoch=False, naive_offset_min=0)
        rejections = [
            Rejection(index, problem.reason, problem.detail)
            for index, problem in enumerate(problems)
            if problem is not None
        ]
        keep = np.array([problem is None for problem in problems], dtype=np.bool_)
        picked = {
            name: columns[name][keep].astype(FLOW_COLUMNS[name], copy=False)
            for name in FLOW_COLUMNS
            if name != "record_index"
        }
        record_index = np.flatnonzero(keep).astype(np.int64)
        names = {
            row.name_hash: row.name
            for row, problem in zip(rows, problems, strict=True)
            if problem is None and isinstance(row, Pending) and row.name is not None
        }
        return DecodeResult(FlowBatch(**picked, record_index=record_index, names=names), rejections)


def decode_record(
    record: bytes, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
) -> FlowRow | Problem:
    """The slow reference path for one record; never raises."""
    row = _document(record, max_record_bytes)
    if isinstance(row, Problem):
        return row
    return resolve_one(row, allow_epoch=False, naive_offset_min=0)
