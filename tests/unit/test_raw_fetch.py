"""aiokafka's fetch reader with the raw-fetch replacements: the same records as aiokafka's own
path, CRCs still checked, aiokafka's path wherever the indexer cannot read."""

from __future__ import annotations

import random

import pytest
from aiokafka.consumer import fetcher
from aiokafka.errors import CorruptRecordException
from aiokafka.structs import TopicPartition

from beaconwatch.sources.polled_columns import polled_columns
from beaconwatch.sources.raw_fetch import RawFetch, install, raw_values
from tests.unit.test_record_batches import batch, fetch

TP = TopicPartition("flows", 3)
install()


def read(raw: bytes, offset: int, marker: object) -> list[object]:
    records = fetcher.MemoryRecords(raw)
    return list(fetcher.PartitionRecords(TP, records, [], offset, None, marker, True, 0))


def fields(r: object) -> tuple[object, ...]:
    return tuple(getattr(r, k) for k in ("topic", "partition", "offset", "timestamp", "key",
                                         "value", "headers"))  # fmt: skip


@pytest.mark.parametrize("seed", range(10))
def test_a_raw_fetch_holds_the_records_aiokafka_would_give(seed: int) -> None:
    raw, first = fetch(random.Random(seed), 3)
    plain = read(raw, first + 2, None)
    (raw_fetch,) = read(raw, first + 2, raw_values)
    assert isinstance(raw_fetch, RawFetch) and len(raw_fetch) == len(plain)
    assert [fields(raw_fetch.record(i)) for i in range(len(plain))] == [fields(r) for r in plain]
    columns = polled_columns([raw_fetch])
    assert columns.offsets.tolist() == [r.offset for r in plain]  # type: ignore[attr-defined]
    assert [fields(r) for r in columns.records] == [fields(r) for r in plain]


def test_a_bad_crc_is_still_caught() -> None:
    raw = bytearray(batch(random.Random(2), 0, 5))
    raw[-1] ^= 0xFF  # a flipped bit in the last record
    with pytest.raises(CorruptRecordException):
        read(bytes(raw), 0, raw_values)


def test_compressed_fetches_and_unmarked_consumers_get_aiokafka_records() -> None:
    gzip = batch(random.Random(3), 0, 4, compression=1)
    assert [type(r).__name__ for r in read(gzip, 0, raw_values)] == ["ConsumerRecord"] * 4
    plain = batch(random.Random(3), 0, 4)
    assert [type(r).__name__ for r in read(plain, 0, None)] == ["ConsumerRecord"] * 4


def test_columns_of_records_and_fetches_mixed_keep_their_order() -> None:
    raw, first = fetch(random.Random(4), 2)
    records = read(raw, first, None)
    (raw_fetch,) = read(raw, first, raw_values)
    mixed = polled_columns([*records[:3], raw_fetch, *records[:2]])
    expected = [*records[:3], *records, *records[:2]]
    assert [fields(r) for r in mixed.records] == [fields(r) for r in expected]
    values = [
        None if n < 0 else mixed.data[s : s + n]
        for s, n in zip(mixed.starts.tolist(), mixed.lengths.tolist(), strict=True)
    ]
    assert values == [r.value for r in expected]  # type: ignore[attr-defined]
