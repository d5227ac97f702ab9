"""``beaconwatch-flows``: many decoded flows in one record, as little-endian columns.

The repartition stage (`core/repartition.py`) writes the flows of one batch that belong to one
partition of the internal topic as one record of this format, and the detector stage reads it
back with one `np.frombuffer` per column: the Kafka client's per-record cost is paid once per
thousands of flows, and no Python object is made per flow.

Layout (all little-endian)::

    magic  b"BWF1"        4 bytes (the format version is its last byte)
    n      uint32         flows in the record
    flags  uint32         FLAG_INITIATOR when the initiator column is there (a record with
                          unknown flags is rejected); 0 in records of 0.1-era writers;
                          FLAG_NAMES (with FLAG_INITIATOR) when the names section is there
    crc    uint32         zlib.crc32 of the bytes after the header
    columns               FLOW_COLUMNS but record_index, name_hash and annotation, widest
                          first, each n values (without the initiator column when the flag is
                          not set: unknown)
    names                 with FLAG_NAMES only (else no flow has a name and none is an
                          annotation): name_hash, n uint64; annotation, n uint8; then m uint32
                          and m times (hash uint64, length uint16, UTF-8 text): the texts of
                          the record's names

A writer sets FLAG_NAMES only when a flow has a name, so records without names are the ones
older readers read.

The widest columns come first so that, behind the 16-byte header, every column is aligned to
its item size when the record's buffer is (CPython bytes are 16-byte aligned).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import numpy as np

from beaconwatch.decode.base import DecodeResult
from beaconwatch.domain.flows import FLOW_COLUMNS, FlowBatch
from beaconwatch.domain.names import MAX_NAME_CHARS, normalise
from beaconwatch.domain.rejections import Rejection, RejectReason

FORMAT_NAME = "beaconwatch-flows"
MAGIC = b"BWF1"
_HEADER = struct.Struct("<4sIII")
HEADER_BYTES = _HEADER.size

# Every column but record_index (which is the record's position in the batch it is read in),
# widest first; each with its explicit little-endian dtype.
WIRE_COLUMNS: tuple[tuple[str, np.dtype[np.generic]], ...] = tuple(
    sorted(
        (
            (name, np.dtype(dtype).newbyteorder("<"))
            for name, dtype in FLOW_COLUMNS.items()
            if name not in ("record_index", "name_hash", "annotation")
        ),
        key=lambda column: -column[1].itemsize,
    )
)
BYTES_PER_FLOW = sum(dtype.itemsize for _, dtype in WIRE_COLUMNS)
# The initiator column came later: records without it (flags 0) are still read. It is the
# last column (one byte, after every wider one), so the older layout is this one without it.
FLAG_INITIATOR = 1
FLAG_NAMES = 2
assert WIRE_COLUMNS[-1][0] == "initiator"
_COLUMNS_BY_FLAGS = {
    FLAG_INITIATOR | FLAG_NAMES: WIRE_COLUMNS,
    FLAG_INITIATOR: WIRE_COLUMNS,
    0: WIRE_COLUMNS[:-1],
}
_NAME_HASH = np.dtype("<u8")
_NAME_COUNT = struct.Struct("<I")
_NAME_ENTRY = struct.Struct("<QH")


def encoded_size(flows: int, flags: int = FLAG_INITIATOR) -> int:
    """Bytes of a record of ``flows`` flows, without its names' texts (FLAG_NAMES)."""
    size = HEADER_BYTES + flows * sum(d.itemsize for _, d in _COLUMNS_BY_FLAGS[flags])
    if flags & FLAG_NAMES:
        size += flows * (_NAME_HASH.itemsize + 1) + _NAME_COUNT.size
    return size


def _names_section(flows: FlowBatch) -> bytes:
    hashes = np.ascontiguousarray(flows.name_hash, dtype=_NAME_HASH)
    parts = [hashes.tobytes(), np.ascontiguousarray(flows.annotation, dtype=np.uint8).tobytes()]
    used = np.unique(hashes[hashes != 0]).tolist()
    texts = [(h, flows.names[h].encode("utf-8")) for h in used if h in flows.names]
    parts.append(_NAME_COUNT.pack(len(texts)))
    for h, text in texts:
        parts.append(_NAME_ENTRY.pack(h, len(text)))
        parts.append(text)
    return b"".join(parts)


def encode_flows(flows: FlowBatch) -> bytes:
    """One record holding every flow of ``flows`` (record_index is not carried), with the
    texts of the names its flows have."""
    body = b"".join(
        np.ascontiguousarray(getattr(flows, name), dtype=dtype).tobytes()
        for name, dtype in WIRE_COLUMNS
    )
    flags = FLAG_INITIATOR
    if flows.name_hash.any() or flows.annotation.any():
        flags |= FLAG_NAMES
        body += _names_section(flows)
    return _HEADER.pack(MAGIC, len(flows), flags, zlib.crc32(body)) + body


def _read_names(record: bytes, n: int) -> tuple[np.ndarray, np.ndarray, dict[int, str]] | str:
    """The name_hash and annotation columns and the texts of a FLAG_NAMES record, or what is
    wrong."""
    offset = encoded_size(n, FLAG_INITIATOR)
    hashes = np.frombuffer(record, dtype=_NAME_HASH, count=n, offset=offset)
    offset += n * _NAME_HASH.itemsize
    annotation = np.frombuffer(record, dtype=np.uint8, count=n, offset=offset)
    offset += n
    if (annotation > 1).any():
        return "annotation flags other than 0/1"
    (count,) = _NAME_COUNT.unpack_from(record, offset)
    offset += _NAME_COUNT.size
    names: dict[int, str] = {}
    for _ in range(count):
        if offset + _NAME_ENTRY.size > len(record):
            return "names section cut short"
        h, length = _NAME_ENTRY.unpack_from(record, offset)
        offset += _NAME_ENTRY.size
        raw = record[offset : offset + length]
        offset += length
        if len(raw) != length or length > 4 * MAX_NAME_CHARS:
            return "names section cut short" if len(raw) != length else "name too long"
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "a name is not UTF-8"
        if normalise(text) != text:
            return "a name is not normalised"
        names[h] = text
    if offset != len(record):
        return f"{len(record) - offset} bytes after the names section"
    # Copies: the hash column is not 8-byte aligned, and frombuffer views are read-only.
    return hashes.astype(np.uint64), annotation.copy(), names


def _problem(record: bytes) -> str | None:
    """Why ``record`` is not a valid flows record, or None."""
    if len(record) < HEADER_BYTES:
        return f"{len(record)} bytes, shorter than the {HEADER_BYTES}-byte header"
    magic, n, flags, crc = _HEADER.unpack_from(record)
    if magic != MAGIC:
        return f"magic {magic!r} is not {MAGIC!r}"
    if flags not in _COLUMNS_BY_FLAGS:
        return f"unknown flags {flags:#x}"
    size = encoded_size(n, flags)
    if len(record) != size and not (flags & FLAG_NAMES and len(record) > size):
        return f"{len(record)} bytes for {n} flows (expected {size})"
    if zlib.crc32(memoryview(record)[HEADER_BYTES:]) != crc:
        return "checksum mismatch"
    if flags & FLAG_NAMES:
        names = _read_names(record, n)
        if isinstance(names, str):
            return names
    return None


class FlowColumnsDecoder:
    """``beaconwatch-flows`` records -> FlowBatch; each flow's record_index is its record's."""

    name = FORMAT_NAME
    # A flow rejected downstream (too late) is dead-lettered alone, not with its record.
    many_flows_per_record = True

    def decode(self, records: Sequence[bytes]) -> DecodeResult:
        parts: list[FlowBatch] = []
        rejections: list[Rejection] = []
        for index, record in enumerate(records):
            problem = _problem(record)
            if problem is not None:
                rejections.append(Rejection(index, RejectReason.INVALID_FLOW_BATCH, problem))
                continue
            parts.append(_columns(record, index))
        return DecodeResult(FlowBatch.concat(parts), rejections)


def _columns(record: bytes, index: int) -> FlowBatch:
    _, n, flags, _ = _HEADER.unpack_from(record)
    columns: dict[str, np.ndarray] = {"initiator": np.zeros(n, dtype=np.uint8)}
    offset = HEADER_BYTES
    for name, dtype in _COLUMNS_BY_FLAGS[flags]:
        column = np.frombuffer(record, dtype=dtype, count=n, offset=offset)
        # A no-op view on little-endian machines; a byte-swapped copy on big-endian ones.
        columns[name] = column.astype(dtype.newbyteorder("="), copy=False)
        offset += n * dtype.itemsize
    columns["record_index"] = np.full(n, index, dtype=np.int64)
    names: dict[int, str] = {}
    if flags & FLAG_NAMES:
        read = _read_names(record, n)
        assert not isinstance(read, str)  # `_problem` checked it
        columns["name_hash"], columns["annotation"], names = read
    else:
        columns["name_hash"] = np.zeros(n, dtype=np.uint64)
        columns["annotation"] = np.zeros(n, dtype=np.uint8)
    return FlowBatch(**columns, names=names)
