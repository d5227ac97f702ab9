"""The flow's name in goflow2 records, from an exporter's element goflow2 maps to a custom field.

goflow2 v2 carries extra IPFIX elements (enterprise ones too) when a mapping file tells it to
(``-mapping``; ours: config/goflow2-names.yaml maps the TLS SNI / QUIC SNI / HTTP host
elements of CESNET's ipfixprobe to ``server_name``). It writes such a bytes field

* in JSON as the key ``"server_name"`` with the bytes in lower-case hex (its default renderer
  for bytes; the ``string`` renderer would write them unescaped, see the mapping file), and
* in protobuf as field `NAME_FIELD` (1000), length-delimited, beside the FlowMessage fields.

The bytes are the name as the exporter saw it (a ClientHello's SNI, an HTTP Host): UTF-8,
``:port`` and IP literals dropped, then `domain.names.normalise`. Anything else -- not hex,
odd length, not UTF-8, an unusable name -- leaves the flow unnamed and never rejects it.

The scanners find the field where they read the flow's fields and return its span (JSON:
``json_scan``, only at the top level of the record; protobuf: ``pb_wire``); a record they
leave to the reference path is parsed by orjson / the protobuf runtime here. A field given
twice: the last counts, as for JSON and protobuf parsers.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson
from google.protobuf.unknown_fields import UnknownFieldSet

from beaconwatch.decode.base import DecodeResult
from beaconwatch.decode.common.host_names import host_name_hash
from beaconwatch.decode.scan.goflow2_pb_record import read_varint
from beaconwatch.decode.scan.goflow2_pb_schema import WIRE_LEN
from beaconwatch.decode.scan.json_scan import NAME_KEY
from beaconwatch.domain.names import MAX_NAME_CHARS

NAME_FIELD = 1000  # the protobuf field number config/goflow2-names.yaml gives it
# A name is at most 253 characters, UTF-8 up to 4 bytes each: longer hex is no name.
_JSON_HEX_RE = re.compile(rb'"([0-9a-fA-F]{0,%d})"' % (2 * 4 * MAX_NAME_CHARS))


@functools.lru_cache(maxsize=65_536)  # a name is in many flows: decode it once
def name_of_bytes(raw: bytes) -> tuple[int, str | None]:
    """(hash, text) of a name field's bytes; (0, None) when they are no usable name."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return 0, None
    return host_name_hash(text)


def name_of_hex(value: bytes) -> tuple[int, str | None]:
    """(hash, text) of the hex goflow2 writes for a bytes field; (0, None) when unusable."""
    if len(value) % 2:
        return 0, None
    return name_of_bytes(bytes.fromhex(value.decode("ascii")))


@functools.lru_cache(maxsize=65_536)
def name_of_json(value: bytes) -> tuple[int, str | None]:
    """(hash, text) of the JSON text of a `NAME_KEY` value: a string of hex digits."""
    match = _JSON_HEX_RE.fullmatch(value)
    return (0, None) if match is None else name_of_hex(match.group(1))


def with_json_names(
    result: DecodeResult,
    buf: npt.NDArray[np.uint8],
    scanned: npt.NDArray[np.bool_],
    name_start: npt.NDArray[np.int64],
    name_end: npt.NDArray[np.int64],
    records: Sequence[bytes],
) -> DecodeResult:
    """``result`` with the names of its flows: the `NAME_KEY` value the scanner found where it
    read the record (``scanned``; its JSON text ``buf[name_start:name_end]``), else from
    orjson's parse of the record (the reference path's rows, rare)."""
    named = np.flatnonzero(scanned & (name_end > name_start))
    spans = (name_start[named], name_end[named] - name_start[named])
    reference = {r: _reference_json_name(records[r]) for r in _reference_rows(result, scanned)}
    return _named(result, len(records), buf, named, spans, name_of_json, reference)


def _reference_json_name(record: bytes) -> tuple[int, str | None]:
    try:
        value = orjson.loads(record).get(NAME_KEY)
    except Exception:  # the decoder contract: bad input never raises
        return 0, None
    if not isinstance(value, str) or not value.isascii():
        return 0, None
    return name_of_json(b'"' + value.encode("ascii") + b'"')


def with_pb_names(
    result: DecodeResult,
    buf: npt.NDArray[np.uint8],
    scanned: npt.NDArray[np.bool_],
    name_at: npt.NDArray[np.int64],
    name_len: npt.NDArray[np.int64],
    records: Sequence[bytes],
    message_class: Any,
) -> DecodeResult:
    """``result`` with the names of its flows: field `NAME_FIELD` where the wire scanner read
    the record (``scanned``; its span ``name_at``/``name_len``), else from the protobuf
    runtime's parse of the record (the reference path's rows, rare)."""
    named = np.flatnonzero(scanned & (name_len > 0))
    reference = {
        r: _reference_pb_name(records[r], message_class) for r in _reference_rows(result, scanned)
    }
    spans = (name_at[named], name_len[named])
    return _named(result, len(records), buf, named, spans, name_of_bytes, reference)


def _reference_pb_name(record: bytes, message_class: Any) -> tuple[int, str | None]:
    """The name field of one accepted record, parsed by the protobuf runtime (where the name
    field is unknown: the FlowMessage schema has no field `NAME_FIELD`)."""
    try:
        data = bytes(record)
        prefix = read_varint(data, 0)
        if prefix is None:
            return 0, None
        message = message_class.FromString(data[prefix[1] :])
        raw = None
        fields = UnknownFieldSet(message)
        for k in range(len(fields)):
            unknown = fields[k]
            if unknown.field_number == NAME_FIELD and unknown.wire_type == WIRE_LEN:
                raw = unknown.data  # the last one counts, as for a protobuf parser
        return (0, None) if raw is None else name_of_bytes(bytes(raw))
    except Exception:  # the decoder contract: bad input never raises
        return 0, None


def _reference_rows(result: DecodeResult, scanned: npt.NDArray[np.bool_]) -> list[int]:
    """The records of ``result``'s flows the scanner did not read (the reference path's)."""
    if scanned.all():
        return []
    index = result.flows.record_index
    return [int(r) for r in index[~scanned[index]].tolist()]


def _named(
    result: DecodeResult,
    n_records: int,
    buf: npt.NDArray[np.uint8],
    named: npt.NDArray[np.intp],
    spans: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]],
    name_of: Callable[[bytes], tuple[int, str | None]],
    reference: dict[int, tuple[int, str | None]],
) -> DecodeResult:
    """``result`` with its flows named: record ``named[i]``'s field is ``spans`` (offsets and
    lengths in ``buf``), read by ``name_of``; ``reference`` (record -> name) for the others."""
    flows = result.flows
    if (named.size == 0 and not reference) or len(flows) == 0:
        return result
    view = memoryview(buf)  # type: ignore[arg-type]  # sliced without copying the batch
    memo: dict[bytes, int] = {}  # the same name in many flows: decoded once per batch
    texts: dict[int, str] = {}
    found: list[int] = []
    for at, n in zip(spans[0].tolist(), spans[1].tolist(), strict=True):
        raw = bytes(view[at : at + n])
        h = memo.get(raw)
        if h is None:
            h, text = name_of(raw)
            memo[raw] = h
            if text is not None:
                texts[h] = text
        found.append(h)
    by_record = np.zeros(n_records, dtype=np.uint64)
    by_record[named] = np.array(found, np.uint64)
    for record, (h, text) in reference.items():
        if text is not None:
            by_record[record] = h
            texts[h] = text
    if not texts:
        return result
    row_hashes = by_record[flows.record_index]
    name_hash = np.where(row_hashes != 0, row_hashes, flows.name_hash)
    named_flows = dataclasses.replace(flows, name_hash=name_hash, names={**flows.names, **texts})
    return dataclasses.replace(result, flows=named_flows)
