"""Raw records from files of JSON lines (``-`` = stdin; gzip detected by its magic bytes).

Used by the offline ``scan`` command. Each record keeps its origin (file, line number) so a
rejected record can be reported where it came from.
"""

from __future__ import annotations

import gzip
import io
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, cast

_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(slots=True)
class LineBatch:
    records: list[bytes] = field(default_factory=list)
    origins: list[tuple[str, int]] = field(default_factory=list)  # (file name, 1-based line)

    def __len__(self) -> int:
        return len(self.records)


def open_input(path: str, stdin: BinaryIO | None = None) -> BinaryIO:
    """A binary stream of the file's (decompressed) bytes. Raises OSError if unreadable."""
    stdin = stdin if stdin is not None else sys.stdin.buffer
    # The file is returned to the caller, who closes it.
    raw: BinaryIO = stdin if path == "-" else open(path, "rb")  # noqa: SIM115
    buffered = (
        raw if isinstance(raw, io.BufferedReader) else io.BufferedReader(cast(io.RawIOBase, raw))
    )
    if buffered.peek(2)[:2] == _GZIP_MAGIC:
        return gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[return-value]
    return buffered


def iter_lines(path: str, stdin: BinaryIO | None = None) -> Iterator[tuple[int, bytes]]:
    """``(line_number, record)`` for every non-blank line (blank lines carry no record)."""
    stream = open_input(path, stdin)
    try:
        for number, line in enumerate(stream, start=1):
            record = line.rstrip(b"\r\n")
            if record.strip():
                yield number, record
    finally:
        if path != "-":
            stream.close()


def read_batches(
    paths: Iterable[str], batch_records: int = 10_000, stdin: BinaryIO | None = None
) -> Iterator[LineBatch]:
    """Records of all ``paths`` in order, in batches of at most ``batch_records``."""
    batch = LineBatch()
    for path in paths:
        name = "<stdin>" if path == "-" else path
        for number, record in iter_lines(path, stdin):
            batch.records.append(record)
            batch.origins.append((name, number))
            if len(batch.records) >= batch_records:
                yield batch
                batch = LineBatch()
    if batch.records:
        yield batch
