"""aiokafka, taught to hand over each partition's fetched bytes instead of a record object each.

A consumer made with ``value_deserializer=raw_values`` gets, per partition and fetch, one
`RawFetch`: the bytes the broker sent and their `FetchIndex` (`record_batches.py`), so the
repartition stage decodes every value where it lies. Everything else about the consumer is
aiokafka's: fetching, positions (the fetch's next offset is handed back to aiokafka exactly as
its own reader would), commits, rebalances, CRC checks (per batch, by aiokafka's C code).
Fetches it cannot index (compressed batches, the old message formats) and consumers reading
committed transactions only come as aiokafka's `ConsumerRecord`s, as before; so does
everything read by consumers without the marker.

This replaces two names in `aiokafka.consumer.fetcher` (`install`); the replacements behave
as the originals unless the marker is given. aiokafka is pinned below 0.15 in pyproject.toml,
and the integration suites run the repartition stage through this on both brokers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from aiokafka import ConsumerRecord
from aiokafka.consumer import fetcher as _fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.record.memory_records import MemoryRecords

from beaconwatch.sources.record_batches import OK, FetchIndex, index_fetch, varint

_READ_UNCOMMITTED = 0


def raw_values(value: bytes | None) -> bytes | None:
    """The marker: a value deserializer that changes nothing (aiokafka's own path calls it)."""
    return value


@dataclass(frozen=True, slots=True)
class RawFetch:
    """One partition's fetched record batches and where each record lies in them."""

    topic: str
    partition: int
    data: bytes
    index: FetchIndex

    def __len__(self) -> int:
        return len(self.index)

    def record(self, i: int) -> ConsumerRecord[bytes, bytes]:
        """Record ``i`` as aiokafka would have given it (for a dead letter: rare)."""
        ix, data = self.index, self.data
        key_start, key_len = int(ix.key_starts[i]), int(ix.key_lengths[i])
        value_start, value_len = int(ix.value_starts[i]), int(ix.value_lengths[i])
        key = None if key_len < 0 else data[key_start : key_start + key_len]
        value = None if value_len < 0 else data[value_start : value_start + value_len]
        headers = _headers(data, int(ix.header_starts[i]), int(ix.record_ends[i]))
        return ConsumerRecord(
            topic=self.topic, partition=self.partition, offset=int(ix.offsets[i]),
            timestamp=int(ix.timestamps_ms[i]), timestamp_type=0, key=key, value=value,
            checksum=None, serialized_key_size=max(key_len, -1),
            serialized_value_size=max(value_len, -1), headers=headers,
        )  # fmt: skip


def _headers(data: bytes, pos: int, end: int) -> tuple[tuple[str, bytes], ...]:
    buf = np.frombuffer(data, dtype=np.uint8)

    def next_varint(at: int) -> tuple[int, int]:
        value, after = varint(buf, at, end)  # the indexer's own reader
        if after < 0:
            raise CorruptRecordException("a malformed varint in the record headers")
        return value, after

    count, pos = next_varint(pos)
    headers = []
    for _ in range(count):
        key_len, pos = next_varint(pos)
        key = data[pos : pos + key_len].decode("utf-8", "replace")
        pos += key_len
        value_len, pos = next_varint(pos)
        value = b"" if value_len < 0 else data[pos : pos + value_len]
        pos += max(value_len, 0)
        headers.append((key, value))
    if pos > end:
        raise CorruptRecordException("record headers run past the record")
    return tuple(headers)


class _KeptMemoryRecords(MemoryRecords):  # type: ignore[misc]
    """aiokafka's fetched-bytes reader, keeping the bytes for `RawPartitionRecords`."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.data = data


class RawPartitionRecords(_fetcher.PartitionRecords):  # type: ignore[misc]
    def __init__(self, tp: Any, records: Any, *args: Any) -> None:
        super().__init__(tp, records, *args)
        if (
            self._value_deserializer is raw_values
            and self._isolation_level == _READ_UNCOMMITTED
            and isinstance(records, _KeptMemoryRecords)
        ):
            self._records_iterator = self._unpack_raw(records)

    def _unpack_raw(self, records: _KeptMemoryRecords) -> Any:
        data = records.data
        fetch_offset: int = self.next_fetch_offset  # type: ignore[has-type]
        index = index_fetch(np.frombuffer(data, dtype=np.uint8), fetch_offset)
        if index.status != OK:  # compressed, an old format or damaged: aiokafka decides
            yield from self._unpack_records()
            return
        if self._check_crcs:
            while records.has_next():
                if not records.next_batch().validate_crc():
                    raise CorruptRecordException(f"Invalid CRC - {self._tp}")
        self.next_fetch_offset = index.next_offset
        if len(index):
            yield RawFetch(self._tp.topic, self._tp.partition, data, index)


def install() -> None:
    """Put the two replacements in place (idempotent)."""
    _fetcher.MemoryRecords = _KeptMemoryRecords
    _fetcher.PartitionRecords = RawPartitionRecords
