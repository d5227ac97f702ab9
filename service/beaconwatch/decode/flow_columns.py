"""``beaconwatch-flows``: many decoded flows in one record, as little-endian columns.

The repartition stage (`core/repartition.py`) writes the flows of one batch that belong to one
partition of the internal topic as one record of this format, and the detector stage reads it
back with one `np.frombuffer` per column: the Kafka client's per-record cost is paid once per
thousands of flows, and no Python object is made per flow.

Layout (all little-endian)::

    magic  b"BWF1"        4 bytes (the format version is its last byte)
    n      uint32         flows in the record
    flags  uint32         FLAG_INITIATOR when the initiator column is there (a record with
                          unknown flags is rejected); 0 in records of 0.1-era writers
    crc    uint32         zlib.crc32 of the column bytes
    columns               FLOW_COLUMNS but record_index, widest first, each n values
                          (without the initiator column when the flag is not set: unknown)

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
            if name != "record_index"
        ),
        key=lambda column: -column[1].itemsize,
    )
)
BYTES_PER_FLOW = sum(dtype.itemsize for _, dtype in WIRE_COLUMNS)
# The initiator column came later: records without it (flags 0) are still read. It is the
# last column (one byte, after every wider one), so the older layout is this one without it.
FLAG_INITIATOR = 1
assert WIRE_COLUMNS[-1][0] == "initiator"
_COLUMNS_BY_FLAGS = {FLAG_INITIATOR: WIRE_COLUMNS, 0: WIRE_COLUMNS[:-1]}


def encoded_size(flows: int, flags: int = FLAG_INITIATOR) -> int:
    return HEADER_BYTES + flows * sum(d.itemsize for _, d in _COLUMNS_BY_FLAGS[flags])


def encode_flows(flows: FlowBatch) -> bytes:
    """One record holding every flow of ``flows`` (record_index is not carried)."""
    body = b"".join(
        np.ascontiguousarray(getattr(flows, name), dtype=dtype).tobytes()
        for name, dtype in WIRE_COLUMNS
    )
    return _HEADER.pack(MAGIC, len(flows), FLAG_INITIATOR, zlib.crc32(body)) + body


def _problem(record: bytes) -> str | None:
    """Why ``record`` is not a valid flows record, or None."""
    if len(record) < HEADER_BYTES:
        return f"{len(record)} bytes, shorter than the {HEADER_BYTES}-byte header"
    magic, n, flags, crc = _HEADER.unpack_from(record)
    if magic != MAGIC:
        return f"magic {magic!r} is not {MAGIC!r}"
    if flags not in _COLUMNS_BY_FLAGS:
        return f"unknown flags {flags:#x}"
    if len(record) != encoded_size(n, flags):
        return f"{len(record)} bytes for {n} flows (expected {encoded_size(n, flags)})"
    if zlib.crc32(memoryview(record)[HEADER_BYTES:]) != crc:
        return "checksum mismatch"
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
    return FlowBatch(**columns)
