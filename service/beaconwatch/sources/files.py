"""Raw records from files of lines (``-`` = stdin; gzip detected by its magic bytes).

Used by the offline ``scan`` command. Each record keeps its origin (file, line number) so a
rejected record can be reported where it came from.

Header-driven formats (Zeek TSV/CSV: ``zeek-tsv``) have lines that are not records: the
``#`` directives before the data (and ``#close`` after it) or a CSV row of field names.
``read_batches`` consumes those and tags each batch with the ``Segment`` it belongs to: the
file, its format and its header lines. A batch never mixes segments, so the caller builds one
decoder per segment (per header) and decodes whole batches with it. With ``format="auto"``
the first line of each file decides: a Zeek header makes the file ``zeek-tsv``, anything else
leaves the file to per-record sniffing (``auto``).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, cast

from beaconwatch.decode.auto import sniff_file
from beaconwatch.decode.zeek.zeek_tsv import ZeekHeader

_GZIP_MAGIC = b"\x1f\x8b"
HEADER_FORMATS = frozenset({"zeek-tsv"})  # formats whose files carry header lines


@dataclass(frozen=True, slots=True)
class Segment:
    """A run of records of one file that one decoder reads."""

    source: str  # file name, "<stdin>" for -
    format: str  # the format name the records are decoded with
    header: tuple[bytes, ...] = ()  # header lines (header-driven formats only)


@dataclass(slots=True)
class LineBatch:
    records: list[bytes] = field(default_factory=list)
    origins: list[tuple[str, int]] = field(default_factory=list)  # (file name, 1-based line)
    segment: Segment | None = None  # None when read without a format (every line a record)

    def __len__(self) -> int:
        return len(self.records)


@dataclass(slots=True)
class ReadProgress:
    """How far reading has got, in bytes of the files as stored (compressed for .gz)."""

    total_bytes: int | None = None  # None when unknown (stdin, pipes)
    done_bytes: int = 0  # bytes of files finished
    files_done: int = 0
    _current: BinaryIO | None = None

    @property
    def read_bytes(self) -> int:
        position = 0
        if self._current is not None:
            try:
                position = self._current.tell()
            except (OSError, ValueError):
                position = 0
        return self.done_bytes + position

    @staticmethod
    def for_paths(paths: Iterable[str]) -> ReadProgress:
        total = 0
        for path in paths:
            try:
                if path == "-" or not os.path.isfile(path):
                    return ReadProgress(None)
                total += os.path.getsize(path)
            except OSError:
                return ReadProgress(None)
        return ReadProgress(total)


def _open(path: str, stdin: BinaryIO | None) -> tuple[BinaryIO, BinaryIO]:
    """(decompressed stream, the underlying file for progress). Raises OSError."""
    stdin = stdin if stdin is not None else sys.stdin.buffer
    # The file is returned to the caller, who closes it.
    raw: BinaryIO = stdin if path == "-" else open(path, "rb")  # noqa: SIM115
    buffered = (
        raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(cast(io.RawIOBase, raw))
    )
    if buffered.peek(2)[:2] == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buffered, mode="rb"), raw  # type: ignore[return-value]
    return buffered, raw


class _FileSegments:
    """Splits one file's lines into header lines and records of segments."""

    def __init__(self, source: str, requested: str) -> None:
        self.source = source
        self.requested = requested
        self.segment: Segment | None = None
        self._pending: list[bytes] | None = None  # header lines not yet followed by data

    def feed(self, line: bytes) -> Segment | None:
        """The segment ``line`` is a record of, or None when it is a header line."""
        if self.segment is None and self._pending is None:
            fmt = self.requested
            if fmt == "auto":
                fmt = sniff_file(line) or "auto"
            self.segment = Segment(self.source, fmt)
            if fmt in HEADER_FORMATS and ZeekHeader.is_header_line(line):
                self.segment = None
                self._pending = [line]
                return None
            return self.segment
        fmt = self.segment.format if self.segment is not None else "zeek-tsv"
        if fmt in HEADER_FORMATS and line.startswith(b"#"):
            if line.startswith(b"#close"):  # a footer, not part of the next header
                return None
            if self._pending is None:
                self._pending = []
            self._pending.append(line)
            return None
        if self._pending is not None:
            defines = any(h.startswith(b"#fields") or not h.startswith(b"#") for h in self._pending)
            if defines or self.segment is None:
                self.segment = Segment(self.source, fmt, tuple(self._pending))
            self._pending = None
        assert self.segment is not None
        return self.segment


def read_batches(
    paths: Iterable[str],
    batch_records: int = 10_000,
    stdin: BinaryIO | None = None,
    *,
    format: str | None = None,
    progress: ReadProgress | None = None,
) -> Iterator[LineBatch]:
    """Records of all ``paths`` in order, in batches of at most ``batch_records``.

    ``format``: the requested format (``auto`` sniffs each file); None reads every non-blank
    line as a record and leaves ``segment`` None. ``progress`` is updated while reading.
    """
    batch = LineBatch()
    for path in paths:
        name = "<stdin>" if path == "-" else path
        stream, raw = _open(path, stdin)
        if progress is not None:
            progress._current = raw if path != "-" else None
        splitter = _FileSegments(name, format) if format is not None else None
        try:
            for number, line in enumerate(stream, start=1):
                record = line.rstrip(b"\r\n")
                if not record.strip():
                    continue
                segment = splitter.feed(record) if splitter is not None else None
                if splitter is not None and segment is None:
                    continue
                if batch.records and (
                    segment is not batch.segment or len(batch.records) >= batch_records
                ):
                    yield batch
                    batch = LineBatch()
                batch.segment = segment
                batch.records.append(record)
                batch.origins.append((name, number))
        finally:
            if path != "-":
                stream.close()
        if progress is not None:
            progress.files_done += 1
            progress._current = None
            if path != "-":
                with contextlib.suppress(OSError):
                    progress.done_bytes += os.path.getsize(path)
    if batch.records:
        yield batch
