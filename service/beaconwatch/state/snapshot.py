"""A partition's pair table as bytes, and back: the body of a checkpoint.

Layout (all integers little-endian):

    magic      8 B   b"BWSTATE\\0"
    version    u16   FORMAT_VERSION, or NAMES_VERSION when the table has name channels
                     (`state.name_channels`); another version is `incompatible`
    head_len   u32   then ``head_len`` bytes of JSON: history_events, epoch_ms, rows, the
                     columns (name, dtype, row shape), the caller's fields (input offset,
                     watermark, ...) and, in NAMES_VERSION, "names": [[hash, text], ...],
                     the texts of the name rows' names (`domain.names`), and, when the
                     partition has Zeek name notes (`state.name_notes`), "notes":
                     {"pairs": base64 of u64 LE [src_hi, src_lo, dst_hi, dst_lo, hash] per
                     pair, oldest first, "names": [[hash, text], ...]}
    columns          each column's used rows, in `ROW_COLUMNS` order, C order
    crc32      u32   of everything before it

Only tracked rows are written, compacted to 0..rows-1; the hash index, free stack and
prevalence contribution are rebuilt on restore. The epoch is kept exactly: ring times are ms
after it, and a restored table scores bit for bit as the one it was taken from.

The notes need no version of their own: a reader from before them ignores the key and loses
only the notes (what every restore did then), and a snapshot without the key restores none.
Bounded by the notes' own bound (`DEFAULT_NOTE_PAIRS`, 40 B a pair and a name of at most 253
characters); a restore keeps the newest that fit.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from beaconwatch.state.levels import NAME_LEVEL
from beaconwatch.state.name_notes import DEFAULT_NOTE_PAIRS, NoteEntry
from beaconwatch.state.pair_table import ROW_COLUMNS, PairBudget, PairTable
from beaconwatch.state.prevalence import Prevalence

# Columns added after FORMAT_VERSION 1 was first written: a snapshot without them is restored
# with their defaults (the new table's), so an upgrade keeps every partition's state.
LATER_COLUMNS = ("direction_inferred", "long_alert_ms", "long_sessions")

MAGIC = b"BWSTATE\0"
FORMAT_VERSION = 1
# Written only when the table has name rows: a reader from before names refuses it (and starts
# the partition afresh) rather than take a name row for a pair.
NAMES_VERSION = 2
_VERSIONS = (FORMAT_VERSION, NAMES_VERSION)
_PREFIX = struct.Struct("<8sHI")
_CRC = struct.Struct("<I")


class SnapshotError(ValueError):
    """A snapshot that cannot be restored; ``reason`` is `corrupt` or `incompatible`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason} snapshot: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Restored:
    table: PairTable
    fields: dict[str, Any]  # the caller's fields, as given to `encode_table`
    notes: list[NoteEntry]  # the partition's name notes, oldest first (`state.name_notes`)


def encode_table(table: PairTable, name_notes: Sequence[NoteEntry] = (), **fields: Any) -> bytes:
    """The tracked rows of ``table`` and the partition's ``name_notes`` (oldest first), with
    ``fields`` (JSON-serialisable) in the header."""
    rows = np.flatnonzero(table.used)
    columns = []
    bodies = []
    for name in ROW_COLUMNS:
        # Fancy indexing already copies into a contiguous array: convert the byte order only
        # where the machine's is not little-endian, and join the arrays' buffers directly.
        column = getattr(table, name)[rows].astype(
            getattr(table, name).dtype.newbyteorder("<"), copy=False
        )
        columns.append([name, column.dtype.str, list(column.shape[1:])])
        bodies.append(column)
    head: dict[str, Any] = {
        "history_events": table.history_events,
        "epoch_ms": table.epoch_ms,
        "rows": int(rows.size),
        "columns": columns,
        "fields": fields,
    }
    version = FORMAT_VERSION
    named = rows[(table.port_proto[rows] & NAME_LEVEL) != 0]
    if named.size:
        version = NAMES_VERSION
        hashes = sorted(set(table.keys[named, 2].tolist()))
        head["names"] = [[h, text] for h in hashes if (text := table.names.get(h)) is not None]
    if name_notes:
        head["notes"] = _encode_notes(name_notes)
    head_bytes = json.dumps(head, separators=(",", ":")).encode()
    prefix = _PREFIX.pack(MAGIC, version, len(head_bytes))
    crc = zlib.crc32(head_bytes, zlib.crc32(prefix))
    for body in bodies:
        crc = zlib.crc32(body, crc)
    return b"".join([prefix, head_bytes, *bodies, _CRC.pack(crc)])


def decode_table(
    data: bytes | memoryview,
    *,
    history_events: int,
    prevalence: Prevalence,
    budget: PairBudget,
    min_capacity: int,
) -> Restored:
    """A new table holding the snapshot's rows, counted into ``prevalence`` and ``budget``.

    Raises `SnapshotError` when the bytes are damaged (`corrupt`) or were written by another
    format version or for another ring length (`incompatible`); nothing is changed then.
    """
    view = memoryview(data)
    if len(view) < _PREFIX.size + _CRC.size:
        raise SnapshotError("corrupt", f"{len(view)} bytes is too short")
    magic, version, head_len = _PREFIX.unpack_from(view)
    if magic != MAGIC:
        raise SnapshotError("corrupt", "not a beaconwatch state snapshot")
    (crc,) = _CRC.unpack_from(view, len(view) - _CRC.size)
    if zlib.crc32(view[: len(view) - _CRC.size]) != crc:
        raise SnapshotError("corrupt", "checksum mismatch")
    if version not in _VERSIONS:
        raise SnapshotError("incompatible", f"format version {version}, expected {_VERSIONS}")
    try:
        head = json.loads(bytes(view[_PREFIX.size : _PREFIX.size + head_len]))
    except ValueError as exc:
        raise SnapshotError("corrupt", f"header: {exc}") from exc
    if head["history_events"] != history_events:
        raise SnapshotError(
            "incompatible",
            f"history_events {head['history_events']}, configured {history_events}",
        )
    rows = int(head["rows"])
    columns = _columns(view, head, _PREFIX.size + head_len, len(view) - _CRC.size, rows)
    capacity = max(min_capacity, 1 << max(0, rows - 1).bit_length())
    table = PairTable(capacity, history_events, prevalence, budget)
    for name, values in columns.items():
        getattr(table, name)[:rows] = values
    table.adopt_rows(rows, int(head["epoch_ms"]))
    try:
        table.names.add((int(h), str(text)) for h, text in head.get("names", []))
    except (TypeError, ValueError) as exc:
        raise SnapshotError("corrupt", f"names: {exc}") from exc
    notes = _decode_notes(head["notes"]) if "notes" in head else []
    return Restored(table, dict(head["fields"]), notes)


_NOTE_DTYPE = np.dtype("<u8")
_NOTE_WIDTH = 5  # src_hi, src_lo, dst_hi, dst_lo, name hash


def _encode_notes(entries: Sequence[NoteEntry]) -> dict[str, Any]:
    pairs = np.array([(*key, h) for key, h, _ in entries], dtype=_NOTE_DTYPE)
    texts = {h: text for _, h, text in entries if text is not None}
    return {
        "pairs": base64.b64encode(pairs.tobytes()).decode("ascii"),
        "names": sorted(texts.items()),
    }


def _decode_notes(notes: Any) -> list[NoteEntry]:
    """The entries of a snapshot's "notes" (the newest `DEFAULT_NOTE_PAIRS` at most)."""
    try:
        raw = base64.b64decode(notes["pairs"], validate=True)
        texts = {int(h): str(text) for h, text in notes["names"]}
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise SnapshotError("corrupt", f"notes: {exc!r}") from exc
    row_bytes = _NOTE_WIDTH * _NOTE_DTYPE.itemsize
    if len(raw) % row_bytes:
        raise SnapshotError("corrupt", f"notes: {len(raw)} bytes is no whole number of pairs")
    pairs = np.frombuffer(raw, dtype=_NOTE_DTYPE).reshape(-1, _NOTE_WIDTH)
    pairs = pairs[-DEFAULT_NOTE_PAIRS:]
    return [((sh, sl, dh, dl), h, texts.get(h)) for sh, sl, dh, dl, h in pairs.tolist()]


def _columns(
    view: memoryview, head: dict[str, Any], offset: int, end: int, rows: int
) -> dict[str, np.ndarray]:
    """The snapshot's columns, checked against today's table layout (read-only views)."""
    names = [c[0] for c in head["columns"]]
    # Today's columns, or those of an older writer: a prefix of LATER_COLUMNS missing.
    older = [
        [n for n in ROW_COLUMNS if n not in LATER_COLUMNS[k:]]
        for k in range(len(LATER_COLUMNS) + 1)
    ]
    if names not in older:
        raise SnapshotError("incompatible", "another set of columns")
    empty = PairTable(1, int(head["history_events"]), Prevalence(16), PairBudget(1))
    out = {}
    for name, dtype, shape in head["columns"]:
        today = getattr(empty, name)
        column = np.dtype(dtype)
        if column != today.dtype.newbyteorder("<") or list(today.shape[1:]) != shape:
            raise SnapshotError("incompatible", f"column {name} is {dtype} {shape}")
        count = rows * int(np.prod(shape, dtype=np.int64))
        size = count * column.itemsize
        if offset + size > end:
            raise SnapshotError("corrupt", "truncated")
        values = np.frombuffer(view, dtype=column, count=count, offset=offset)
        out[name] = values.reshape((rows, *shape))
        offset += size
    if offset != end:
        raise SnapshotError("corrupt", f"{end - offset} bytes after the last column")
    return out
