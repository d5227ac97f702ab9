"""Decoder for Zeek ``conn.log`` text files (``zeek-tsv``): Zeek TSV and CSV with Zeek fields.

With a ``#path ssl`` / ``#path http`` header (``ssl.log``/``http.log``) the records are name
annotations, as in ``zeek_json``: ``ts``, ``id.orig_h``, ``id.resp_h``, ``id.resp_p`` and
``server_name`` / ``host`` (without ``:port``; an IP literal is no name; Zeek's ``\\xHH``
escapes undone) become an annotation row (`state.name_notes`). A record without a usable name
(``-``, ``(empty)``) gives no row and is not rejected; one with a bad address or time is.

The columns are found by name from a header, so extra columns (Stratosphere's ``label`` /
``detailedlabel``, ``community_id``, ...) and any column order work:

* Zeek TSV (the ASCII writer's default): ``#separator \\x09`` then ``#set_separator``,
  ``#empty_field``, ``#unset_field``, ``#path``, ``#open``, ``#fields``, ``#types`` lines
  before the data and ``#close`` after it. Unset fields are ``-``, empty ones ``(empty)``.
* The ASCII writer's ``tsv=T`` mode: a single plain header row of tab-separated field names.
* CSV with Zeek fields (IoT-23 style): a first line ``ts,uid,id.orig_h,...``; empty cells
  and ``-`` are unset; quoted cells are read as CSV.

A decoder instance is built for one header (:meth:`ZeekHeader.parse`) and then decodes data
lines only: header lines are metadata, not records, so whoever reads the file consumes them
(``sources.files`` for ``scan``; :func:`read_zeek_log` for evaluations). Without a header the
decoder assumes Zeek's default TSV conn.log columns; a Kafka topic of header-less lines of
another log, or of changed columns, says so in its configuration (`kafka.zeek_tsv_topics`,
:meth:`ZeekHeader.for_log`). A ``#`` line given to ``decode`` is rejected. Field semantics
(what becomes start, end, bytes, ...) are in ``zeek_common``.
"""

from __future__ import annotations

import csv
import gzip
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from beaconwatch.decode.base import DecodeResult
from beaconwatch.decode.common.rows import INT64_MAX, show
from beaconwatch.decode.zeek.zeek_columns import (
    DEFAULT_CONN_FIELDS,
    DEFAULT_FIELDS,
    NAME_FIELDS,
    required_fields,
)
from beaconwatch.decode.zeek.zeek_common import (
    DEFAULT_MAX_RECORD_BYTES,
    TCP,
    ZeekRows,
    iso_to_ms,
    note_name,
    proto_number,
)
from beaconwatch.domain.rejections import RejectReason

# Names label columns go by in the Stratosphere (TSV) and IoT-23 (CSV) files.
LABEL_COLUMNS = ("label", "detailedlabel", "detailed-label", "detailed_label")

_SECONDS_RE = re.compile(rb"(\d{1,15})(?:\.(\d{0,9}))?")
_HEX_ESCAPE_RE = re.compile(r"\\x([0-9a-fA-F]{2})")
_HEX_ESCAPE_BYTES_RE = re.compile(rb"\\x([0-9a-fA-F]{2})")


@dataclass(frozen=True, slots=True)
class ZeekHeader:
    """How to split a data line and which column holds what."""

    fields: tuple[str, ...] = DEFAULT_CONN_FIELDS
    separator: bytes = b"\t"
    unset_field: bytes = b"-"
    empty_field: bytes = b"(empty)"
    path: str | None = None  # the #path directive (``conn``), when given
    csv: bool = False  # cells may be quoted ("a,b")

    @staticmethod
    def is_header_line(line: bytes) -> bool:
        """Whether ``line`` is header or footer rather than data: a ``#`` directive, or a
        plain row of field names (CSV or ``tsv=T``) naming ``id.orig_h``."""
        if line.startswith(b"#"):
            return True
        head = line.lstrip(b"\xef\xbb\xbf")  # a UTF-8 BOM some CSV tools write
        return head.startswith(b"ts") and b"id.orig_h" in head and not head[:1].isdigit()

    @classmethod
    def parse(cls, lines: Sequence[bytes]) -> ZeekHeader:
        """The header described by ``lines`` (directives or one field-name row); defaults
        for whatever they leave out. Unknown directives (``#open``, ``#types``) are ignored."""
        separator, unset, empty = b"\t", b"-", b"(empty)"
        fields: tuple[str, ...] | None = None
        path: str | None = None
        plain: bytes | None = None
        for raw in lines:
            line = raw.rstrip(b"\r\n")
            if line.startswith(b"#separator"):
                value = line[len(b"#separator") :].strip(b" ")
                text = _HEX_ESCAPE_RE.sub(
                    lambda m: chr(int(m.group(1), 16)), value.decode("latin-1")
                )
                separator = text.encode("latin-1") or b"\t"
            elif line.startswith(b"#"):
                key, _, rest = line[1:].partition(separator)
                if key == b"fields":
                    fields = tuple(
                        rest.decode("utf-8", "replace").split(separator.decode("latin-1"))
                    )
                elif key == b"unset_field":
                    unset = rest
                elif key == b"empty_field":
                    empty = rest
                elif key == b"path":
                    path = rest.decode("utf-8", "replace")
            elif line.strip():
                plain = line.lstrip(b"\xef\xbb\xbf")
        if fields is None and plain is not None:
            sep = b"\t" if b"\t" in plain else b","
            names = [
                n.strip().strip('"') for n in plain.decode("utf-8", "replace").split(sep.decode())
            ]
            csv_mode = sep == b","
            return cls(tuple(names), sep, b"-", b"" if csv_mode else b"(empty)", None, csv_mode)
        return cls(fields or DEFAULT_CONN_FIELDS, separator, unset, empty, path, False)

    @classmethod
    def for_log(cls, log: str, fields: Sequence[str] | None = None) -> ZeekHeader:
        """The header of header-less TSV lines of a ``log`` (``conn``, ``ssl``, ``http``):
        ``fields`` as given, else Zeek's default columns of that log (`zeek_columns`)."""
        return cls(tuple(fields) if fields else DEFAULT_FIELDS[log], path=log)

    def column(self, name: str) -> int | None:
        try:
            return self.fields.index(name)
        except ValueError:
            return None


class ZeekTsvDecoder:
    """``zeek-tsv``: data lines of one Zeek TSV/CSV conn log -> FlowBatch."""

    name = "zeek-tsv"

    def __init__(
        self, header: ZeekHeader | None = None, *, max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    ) -> None:
        if max_record_bytes < 1:
            raise ValueError("max_record_bytes must be >= 1")
        self.header = header if header is not None else ZeekHeader()
        self.max_record_bytes = max_record_bytes
        h = self.header
        # The stream the #path names: conn (also without #path), ssl, http, or None (another).
        self._stream = _stream(h.path)
        self._name_field = NAME_FIELDS.get(self._stream or "")
        self._missing = [f for f in required_fields(self._stream or "") if h.column(f) is None]
        self._not_conn = self._stream is None
        self._width = len(h.fields)
        self._unset = {b"", h.unset_field, h.empty_field}
        self._sep = h.separator
        self._csv = h.csv
        col = h.column
        self._ts, self._src, self._dst = col("ts"), col("id.orig_h"), col("id.resp_h")
        self._sport, self._dport, self._proto = col("id.orig_p"), col("id.resp_p"), col("proto")
        self._ip_proto, self._duration = col("ip_proto"), col("duration")
        self._name = col(self._name_field) if self._name_field else None
        self._ip_bytes, self._bytes, self._pkts = (
            col("orig_ip_bytes"),
            col("orig_bytes"),
            col("orig_pkts"),
        )

    def decode(self, records: Sequence[bytes]) -> DecodeResult:
        rows = ZeekRows()
        if self._missing or self._not_conn:
            # Another log first: its columns are not what is missing.
            detail = (
                f"#path {show(self.header.path)} is not a conn, ssl or http log"
                if self._not_conn
                else f"header has no column {self._missing[0]}"
            )
            reason = RejectReason.INVALID_FIELD if self._not_conn else RejectReason.MISSING_FIELD
            for index in range(len(records)):
                rows.reject(index, reason, detail)
            return rows.finish()
        for index, record in enumerate(records):
            problem = self._add(rows, index, bytes(record))
            if problem is not None:
                rows.reject(index, *problem)
        return rows.finish()

    def _cells(self, record: bytes) -> list[bytes]:
        if self._csv and b'"' in record:
            try:
                text = record.decode("utf-8")
                return [c.encode("utf-8") for c in next(csv.reader([text]))]
            except (csv.Error, StopIteration, UnicodeDecodeError):
                return []
        return record.split(self._sep)

    def _add(self, rows: ZeekRows, index: int, record: bytes) -> tuple[str, str] | None:
        if len(record) > self.max_record_bytes:
            return RejectReason.OVERSIZED, f"{len(record)} bytes > {self.max_record_bytes}"
        if not record.isascii():
            try:
                record.decode("utf-8")
            except UnicodeDecodeError as exc:
                return RejectReason.INVALID_UTF8, f"invalid UTF-8 at byte {exc.start}"
        if record.startswith(b"#"):
            return RejectReason.INVALID_FIELD, "a Zeek header line, not a record"
        cells = self._cells(record)
        if len(cells) != self._width:
            return RejectReason.INVALID_FIELD, f"{len(cells)} columns, the header has {self._width}"
        unset = self._unset
        assert self._ts is not None and self._src is not None and self._dst is not None
        assert self._dport is not None  # checked in decode()
        ts = cells[self._ts]
        if ts in unset:
            return RejectReason.MISSING_FIELD, "missing ts"
        start_ms = _time_ms(ts)
        if start_ms is None:
            return RejectReason.INVALID_FIELD, f"ts: not a time: {show(ts)}"
        src, dst = cells[self._src], cells[self._dst]
        if src in unset:
            return RejectReason.MISSING_FIELD, "missing id.orig_h"
        if dst in unset:
            return RejectReason.MISSING_FIELD, "missing id.resp_h"
        if self._name is not None:
            return self._add_note(rows, index, cells, start_ms, src, dst)
        assert self._proto is not None  # checked in decode() for a conn log
        proto_text = cells[self._proto]
        if proto_text in unset:
            return RejectReason.MISSING_FIELD, "missing proto"
        try:
            ip_proto = self._count(cells, self._ip_proto, "ip_proto", 255)
            src_port = self._count(cells, self._sport, "id.orig_p", 65535) or 0
            dst_port = self._count(cells, self._dport, "id.resp_p", 65535)
            if dst_port is None:
                return RejectReason.MISSING_FIELD, "missing id.resp_p"
            ip_bytes = self._count(cells, self._ip_bytes, "orig_ip_bytes", INT64_MAX)
            payload = self._count(cells, self._bytes, "orig_bytes", INT64_MAX)
            packets = self._count(cells, self._pkts, "orig_pkts", INT64_MAX)
        except ValueError as exc:
            return RejectReason.INVALID_FIELD, str(exc)
        proto = proto_number(proto_text.decode("latin-1"), ip_proto)
        if proto is None:
            return RejectReason.INVALID_FIELD, f"proto: unknown {show(proto_text)}"
        end_ms = start_ms
        if self._duration is not None and cells[self._duration] not in unset:
            duration_ms = _time_ms(cells[self._duration], iso=False)
            if duration_ms is None:
                return RejectReason.INVALID_FIELD, f"duration: {show(cells[self._duration])}"
            end_ms = start_ms + duration_ms
            if end_ms > INT64_MAX:
                return RejectReason.INVALID_FIELD, "ts + duration: out of range"
        nbytes = ip_bytes if ip_bytes is not None else (payload or 0)
        rows.add(
            index, start_ms, end_ms, src, dst, src_port, dst_port, proto, nbytes,
            1 if packets is None else packets,
        )  # fmt: skip
        return None

    def _add_note(
        self, rows: ZeekRows, index: int, cells: list[bytes], start_ms: int, src: bytes,
        dst: bytes,
    ) -> tuple[str, str] | None:  # fmt: skip
        """An ssl/http record: an annotation row when it carries a usable name."""
        assert self._name is not None
        try:
            src_port = self._count(cells, self._sport, "id.orig_p", 65535) or 0
            dst_port = self._count(cells, self._dport, "id.resp_p", 65535)
        except ValueError as exc:
            return RejectReason.INVALID_FIELD, str(exc)
        if dst_port is None:
            return RejectReason.MISSING_FIELD, "missing id.resp_p"
        cell = cells[self._name]
        if cell in self._unset:
            return None
        try:  # the record is valid UTF-8; an escape may spell bytes that are not
            text = _HEX_ESCAPE_BYTES_RE.sub(lambda m: bytes([int(m[1], 16)]), cell).decode()
        except UnicodeDecodeError:
            return None
        h, name = note_name(text)
        if name is not None:
            rows.add(index, start_ms, start_ms, src, dst, src_port, dst_port, TCP, 0, 0,
                     name_hash=h, name=name, annotation=True)  # fmt: skip
        return None

    def _count(self, cells: list[bytes], column: int | None, name: str, high: int) -> int | None:
        """A Zeek ``count``/``port`` cell: plain decimal digits, None when unset."""
        if column is None:
            return None
        cell = cells[column]
        if cell in self._unset:
            return None
        if not (cell.isdigit() and len(cell) <= 20) or int(cell) > high:
            raise ValueError(f"{name}: not a count in 0..{high}: {show(cell)}")
        return int(cell)


def _stream(path: str | None) -> str | None:
    """The log a #path names: ``conn`` (none given: the default columns are conn.log's), one
    of `NAME_FIELDS`, or None for another log (dns, files, ...)."""
    if path is None or path.startswith("conn"):
        return "conn"
    return next((s for s in NAME_FIELDS if path.startswith(s)), None)


def _time_ms(cell: bytes, iso: bool = True) -> int | None:
    """Zeek ``time``/``interval`` text (``1655071198.444458``) -> ms exactly (floored);
    ISO 8601 text for times too. None when it is neither (or negative)."""
    match = _SECONDS_RE.fullmatch(cell)
    if match is not None:
        fraction = match.group(2) or b""
        return int(match.group(1)) * 1000 + int((fraction + b"000")[:3])
    if iso and cell.isascii():
        ms = iso_to_ms(cell.decode("ascii"))
        return ms if ms is not None and 0 <= ms <= INT64_MAX else None
    return None


# --- Reading whole files (scan's file reader does the same in a streaming way) -------------


@dataclass(frozen=True, slots=True)
class ZeekLog:
    """One Zeek log file: its header and its data lines in order (``records[i]`` is the
    record the decoder reports as ``record_index == i``)."""

    header: ZeekHeader
    records: list[bytes]
    line_numbers: list[int]  # 1-based line of each record in the file


def _lines(path: str | Path) -> Iterator[tuple[int, bytes]]:
    """Non-blank lines with their 1-based numbers; gzip recognised by its magic bytes."""
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw)
        for number, line in enumerate(stream, start=1):
            record = line.rstrip(b"\r\n")
            if record.strip():
                yield number, record


def read_zeek_log(path: str | Path) -> ZeekLog:
    """Read a Zeek TSV/CSV log (``.gz`` ok). Header lines before the first data line make
    the header; ``#`` lines after it (``#close``) are skipped."""
    header_lines: list[bytes] = []
    records: list[bytes] = []
    numbers: list[int] = []
    for number, line in _lines(path):
        if not records and ZeekHeader.is_header_line(line):
            header_lines.append(line)
        elif line.startswith(b"#"):
            continue
        else:
            records.append(line)
            numbers.append(number)
    return ZeekLog(ZeekHeader.parse(header_lines), records, numbers)


def read_zeek_column(log: ZeekLog, name: str) -> list[str | None]:
    """Column ``name`` of every record of ``log`` (None where unset or the row is short)."""
    h = log.header
    column = h.column(name)
    if column is None:
        raise KeyError(f"no column {name!r}; columns: {', '.join(h.fields)}")
    unset = {b"", h.unset_field, h.empty_field}
    out: list[str | None] = []
    for record in log.records:
        cells = (
            [c.encode() for c in next(csv.reader([record.decode("utf-8", "replace")]))]
            if h.csv and b'"' in record
            else record.split(h.separator)
        )
        cell = cells[column] if column < len(cells) else b""
        out.append(None if cell in unset else cell.decode("utf-8", "replace"))
    return out


def read_zeek_labels(path: str | Path, column: str = "label") -> list[str]:
    """The ground-truth label of each record of a labelled Zeek log, indexed like the
    decoder's ``record_index`` when the file's records are decoded as one batch
    (``ZeekTsvDecoder(log.header).decode(log.records)``). Unset labels are ``""``.

    ``column``: ``label`` (``Malicious``/``Benign``/``Background`` in Stratosphere logs,
    ``benign``/``Malicious`` in IoT-23), or ``detailedlabel`` (either spelling)."""
    log = read_zeek_log(path)
    name = column
    if log.header.column(name) is None and column in LABEL_COLUMNS[1:]:
        name = next((c for c in LABEL_COLUMNS[1:] if log.header.column(c) is not None), column)
    return [value or "" for value in read_zeek_column(log, name)]
