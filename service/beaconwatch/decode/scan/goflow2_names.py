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

JSON: one regular-expression pass over the batch's joined buffer finds the key (nothing to do
for a batch without names). In valid JSON ``"server_name":"`` preceded by ``,`` or ``{`` is a
key, never the inside of a string (a quote in a string is escaped), and the scanner and the
reference path accept only valid JSON. When a record has the key twice the last counts, as
for JSON parsers.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from google.protobuf.unknown_fields import UnknownFieldSet

from beaconwatch.decode.base import DecodeResult
from beaconwatch.decode.common.host_names import host_name_hash
from beaconwatch.decode.scan.goflow2_pb_record import read_varint
from beaconwatch.decode.scan.goflow2_pb_schema import WIRE_LEN
from beaconwatch.domain.names import MAX_NAME_CHARS

NAME_KEY = "server_name"
NAME_FIELD = 1000  # the protobuf field number config/goflow2-names.yaml gives it
# A name is at most 253 characters, UTF-8 up to 4 bytes each: longer hex is no name.
_MAX_HEX = 2 * 4 * MAX_NAME_CHARS
_JSON_NAME_RE = re.compile(rb'"server_name":"([0-9a-fA-F]{0,%d})"' % _MAX_HEX)
_KEY_BEFORE = frozenset(b",{")


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


def with_json_names(
    result: DecodeResult,
    buf: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.int64],
    ends: npt.NDArray[np.int64],
) -> DecodeResult:
    """``result`` with the names of its flows' records (records ``buf[starts[i]:ends[i]]``)."""
    by_record: dict[int, bytes] = {}
    view = memoryview(buf)  # type: ignore[arg-type]  # searched in place, no copy
    for match in _JSON_NAME_RE.finditer(view):
        at = match.start()
        if at == 0 or int(buf[at - 1]) not in _KEY_BEFORE:
            continue
        record = int(np.searchsorted(ends, at, side="right"))
        if record < len(ends) and starts[record] <= at and match.end() <= ends[record]:
            by_record[record] = match.group(1)  # the last of a record's keys wins
    if not by_record:
        return result
    return _named(result, {r: name_of_hex(v) for r, v in by_record.items()})


def _named(result: DecodeResult, names: dict[int, tuple[int, str | None]]) -> DecodeResult:
    """``result`` with ``names`` (record index -> (hash, text)) put on its flows' rows."""
    flows = result.flows
    hashes = flows.name_hash.copy()
    texts: dict[int, str] = dict(flows.names)
    for row, record in enumerate(flows.record_index.tolist()):
        h, text = names.get(record, (0, None))
        if text is not None:
            hashes[row] = h
            texts[h] = text
    if not texts:
        return result
    return dataclasses.replace(
        result, flows=dataclasses.replace(flows, name_hash=hashes, names=texts)
    )


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
    names: dict[int, tuple[int, str | None]] = {}
    for record in np.flatnonzero(scanned & (name_len > 0)).tolist():
        at = int(name_at[record])
        names[record] = name_of_bytes(buf[at : at + int(name_len[record])].tobytes())
    for record in result.flows.record_index.tolist():
        if not scanned[record]:
            names[record] = _reference_name(records[record], message_class)
    if not names:
        return result
    return _named(result, names)


def _reference_name(record: bytes, message_class: Any) -> tuple[int, str | None]:
    """The name field of one accepted record, parsed by the protobuf runtime (where the name
    field is unknown: the FlowMessage schema has no field `NAME_FIELD`)."""
    try:
        prefix = read_varint(bytes(record), 0)
        if prefix is None:
            return 0, None
        message = message_class.FromString(bytes(record)[prefix[1] :])
        raw = None
        fields = UnknownFieldSet(message)
        for k in range(len(fields)):
            unknown = fields[k]
            if unknown.field_number == NAME_FIELD and unknown.wire_type == WIRE_LEN:
                raw = unknown.data  # the last one counts, as for a protobuf parser
        return (0, None) if raw is None else name_of_bytes(bytes(raw))
    except Exception:  # the decoder contract: bad input never raises
        return 0, None
