"""The shape every batch-scanning decoder shares: join, scan fast, fall back per record.

A numba kernel scans the whole batch joined into one byte buffer; records it does not fully
accept go one by one through the decoder's reference path, which either accepts them with the
same values or rejects them with a precise reason. Oversized records are neither copied nor
scanned: the fallback reports them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import numpy.typing as npt

from beaconwatch.decode.base import DecodeResult
from beaconwatch.decode.common.rows import FlowRow, Problem
from beaconwatch.domain.dtypes import I64
from beaconwatch.domain.flows import FLOW_COLUMNS, FlowBatch
from beaconwatch.domain.rejections import Rejection, RejectReason

_new_tuple = tuple.__new__
# FlowRow order (the initiator last: what the record says, `decode.initiator`).
# No name: the scanned formats (goflow2) carry none, so name_hash is 0.
_NO_NAMES = ("record_index", "name_hash", "annotation")
ROW_COLUMNS = [name for name in FLOW_COLUMNS if name not in _NO_NAMES]


@dataclass(frozen=True, slots=True)
class JoinedBatch:
    records: Sequence[bytes]  # the input, oversized records replaced by b""
    buf: npt.NDArray[np.uint8]  # all records back to back
    starts: I64  # record i is buf[starts[i]:ends[i]]
    ends: I64
    sizes: I64  # original record lengths
    oversized: npt.NDArray[np.bool_]


def join_records(records: Sequence[bytes], max_record_bytes: int) -> JoinedBatch:
    sizes = np.fromiter(map(len, records), dtype=np.int64, count=len(records))
    lengths = sizes
    oversized = sizes > max_record_bytes
    if oversized.any():
        records = list(records)
        for index in np.flatnonzero(oversized).tolist():
            records[index] = b""
        lengths = np.where(oversized, 0, sizes)
    ends = np.cumsum(lengths)
    buf = np.frombuffer(b"".join(records), dtype=np.uint8)
    return JoinedBatch(records, buf, ends - lengths, ends, sizes, oversized)


class LazyValues(Sequence[bytes]):
    """Records that lie in one buffer, as bytes only when asked for (the fallback path)."""

    def __init__(self, data: bytes | npt.NDArray[np.uint8], starts: I64, ends: I64) -> None:
        self._data = data
        self._starts = starts.tolist()
        self._ends = ends.tolist()

    def __len__(self) -> int:
        return len(self._starts)

    @overload
    def __getitem__(self, index: int) -> bytes: ...
    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...
    def __getitem__(self, index: int | slice) -> bytes | list[bytes]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return bytes(self._data[self._starts[index] : self._ends[index]])


def join_columns(data: bytes, starts: I64, lengths: I64, max_record_bytes: int) -> JoinedBatch:
    """A `JoinedBatch` of records that already lie in ``data`` (a Kafka fetch): no copy.
    Record i is data[starts[i]:starts[i] + lengths[i]]."""
    oversized = lengths > max_record_bytes
    ends = starts + np.where(oversized, 0, lengths)
    buf = np.frombuffer(data, dtype=np.uint8)
    return JoinedBatch(LazyValues(data, starts, ends), buf, starts, ends, lengths, oversized)


def not_accepted(joined: JoinedBatch, ok: npt.NDArray[np.bool_]) -> list[int]:
    """Indexes of the records the scan did not accept and that are not oversized."""
    return np.flatnonzero(~ok & ~joined.oversized).tolist()


def finish_batch(
    joined: JoinedBatch,
    ok: npt.NDArray[np.bool_],
    columns: list[npt.NDArray[Any]],
    max_record_bytes: int,
    decode_one: Callable[[bytes], FlowRow | Problem],
    known: Mapping[int, tuple[str, str]] | None = None,
) -> DecodeResult:
    """Run ``decode_one`` on the records the scan did not accept (``~ok``), then keep the rows
    that are accepted now. ``columns`` (in `ROW_COLUMNS` order) are filled in place.
    ``known``: (reason, detail) already decided in bulk (`fast_reject`, the scanners' status),
    exactly as ``decode_one`` would decide them, by record index; oversized records are
    reported here."""
    rejections: list[Rejection] = []
    known = known or {}
    # Python lists, not NumPy scalars, in the per-record loop (a storm of bad records), and
    # each Rejection built straight from a tuple (`tuple.__new__`, no Python-level __new__).
    oversized = joined.oversized.tolist() if joined.oversized.any() else None
    sizes = joined.sizes.tolist() if oversized is not None else []
    records = joined.records
    append = rejections.append
    for index in np.flatnonzero(~ok).tolist():
        if oversized is not None and oversized[index]:
            detail = f"{sizes[index]} bytes > {max_record_bytes}"
            append(_new_tuple(Rejection, (index, RejectReason.OVERSIZED, detail, None)))
            continue
        problem = known.get(index)
        if problem is None:
            result = decode_one(records[index])
            if not isinstance(result, Problem):
                for column, value in zip(columns, result, strict=True):
                    column[index] = value
                ok[index] = True
                continue
            problem = result
        append(_new_tuple(Rejection, (index, problem[0], problem[1], None)))
    if ok.all():
        picked: dict[str, Any] = dict(zip(ROW_COLUMNS, columns, strict=True))
        n = len(ok)
        return DecodeResult(
            FlowBatch.from_columns(**picked, record_index=np.arange(n)),
            rejections,
        )
    keep = np.flatnonzero(ok)
    kept: dict[str, Any] = {name: col[keep] for name, col in zip(ROW_COLUMNS, columns, strict=True)}
    return DecodeResult(
        FlowBatch.from_columns(**kept, record_index=keep.astype(np.int64)),
        rejections,
    )
