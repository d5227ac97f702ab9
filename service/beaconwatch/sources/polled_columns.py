"""One partition's polled records as columns: values where they lie, offsets, and each whole
record on demand (for a dead letter).

A poll gives `RawFetch`es (`raw_fetch.py`) or aiokafka `ConsumerRecord`s (fetches it could not
index, in-memory sources in tests); either way the repartition stage sees one buffer with the
values in it, their starts and lengths (-1: no value), and their offsets.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
from aiokafka import ConsumerRecord

from beaconwatch.domain.dtypes import I64
from beaconwatch.sources.raw_fetch import RawFetch


@dataclass(frozen=True, slots=True)
class PolledColumns:
    data: bytes
    starts: I64
    lengths: I64  # -1: no value (a tombstone)
    offsets: I64
    records: Sequence[ConsumerRecord[bytes, bytes]]  # record i whole, built when indexed

    def __len__(self) -> int:
        return len(self.offsets)


class _Records(Sequence[ConsumerRecord[bytes, bytes]]):
    """Record i of the segments, each a RawFetch or a list of ConsumerRecords."""

    def __init__(self, segments: list[RawFetch | list[ConsumerRecord[bytes, bytes]]]) -> None:
        self._segments = segments
        self._firsts: list[int] = []
        total = 0
        for segment in segments:
            self._firsts.append(total)
            total += len(segment)
        self._total = total

    def __len__(self) -> int:
        return self._total

    @overload
    def __getitem__(self, index: int) -> ConsumerRecord[bytes, bytes]: ...
    @overload
    def __getitem__(self, index: slice) -> list[ConsumerRecord[bytes, bytes]]: ...
    def __getitem__(
        self, index: int | slice
    ) -> ConsumerRecord[bytes, bytes] | list[ConsumerRecord[bytes, bytes]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._total))]
        if index < 0:
            index += self._total
        if not 0 <= index < self._total:
            raise IndexError(index)
        k = bisect.bisect_right(self._firsts, index) - 1
        segment, local = self._segments[k], index - self._firsts[k]
        return segment.record(local) if isinstance(segment, RawFetch) else segment[local]


def polled_columns(items: Sequence[Any]) -> PolledColumns:
    """Columns of one partition's polled items (`Polled`), in order."""
    segments: list[RawFetch | list[ConsumerRecord[bytes, bytes]]] = []
    for item in items:
        if isinstance(item, RawFetch):
            segments.append(item)
        elif segments and isinstance(segments[-1], list):
            segments[-1].append(item)
        else:
            segments.append([item])
    if len(segments) == 1 and isinstance(segments[0], RawFetch):  # the usual case: no copy
        fetch = segments[0]
        ix = fetch.index
        return PolledColumns(
            fetch.data, ix.value_starts, ix.value_lengths, ix.offsets, _Records(segments)
        )
    parts: list[bytes] = []
    starts: list[I64] = []
    lengths: list[I64] = []
    offsets: list[I64] = []
    base = 0
    for segment in segments:
        if isinstance(segment, RawFetch):
            ix = segment.index
            parts.append(segment.data)
            starts.append(ix.value_starts + base)
            lengths.append(ix.value_lengths)
            offsets.append(ix.offsets)
            base += len(segment.data)
        else:
            values = [m.value or b"" for m in segment]
            seg_lengths = np.fromiter(
                (-1 if m.value is None else len(m.value) for m in segment),
                dtype=np.int64, count=len(segment),
            )  # fmt: skip
            ends = np.cumsum(np.maximum(seg_lengths, 0))
            parts.append(b"".join(values))
            starts.append(ends - np.maximum(seg_lengths, 0) + base)
            lengths.append(seg_lengths)
            offsets.append(np.fromiter((m.offset for m in segment), np.int64, len(segment)))
            base += int(ends[-1]) if len(ends) else 0
    empty = np.empty(0, dtype=np.int64)
    return PolledColumns(
        b"".join(parts),
        np.concatenate(starts) if starts else empty,
        np.concatenate(lengths) if lengths else empty,
        np.concatenate(offsets) if offsets else empty,
        _Records(segments),
    )
