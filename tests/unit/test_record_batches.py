"""The numba indexer of Kafka record batches against aiokafka's own reader, on batches built
by aiokafka's own builder: every record's offset, timestamp, key, value and headers."""

from __future__ import annotations

import random

import numpy as np
import pytest
from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import TopicPartition

from beaconwatch.sources.record_batches import CORRUPT, FALLBACK, OK, FetchIndex, index_fetch

TP = TopicPartition("t", 0)


def batch(
    rng: random.Random, base_offset: int, count: int, *, compression: int = 0, gaps: bool = False
) -> bytes:
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=compression, is_transactional=0, producer_id=-1,
        producer_epoch=-1, base_sequence=-1, batch_size=1 << 22,
    )  # fmt: skip
    delta = 0
    for _ in range(count):
        key = None if rng.random() < 0.3 else rng.randbytes(rng.randrange(0, 40))
        value = None if rng.random() < 0.1 else rng.randbytes(rng.choice([0, 5, 120, 1000, 70_000]))
        headers = [(f"h{i}", rng.randbytes(rng.randrange(0, 9))) for i in range(rng.randrange(3))]
        ts = 1_700_000_000_000 + rng.randrange(-(10**6), 10**6)
        assert builder.append(delta, timestamp=ts, key=key, value=value, headers=headers)
        delta += rng.randrange(1, 4) if gaps else 1  # compacted topics leave gaps
    built = bytearray(builder.build())
    built[0:8] = base_offset.to_bytes(8, "big")
    return bytes(built)


def reference(
    raw: bytes, fetch_offset: int
) -> list[tuple[int, int, bytes | None, bytes | None, tuple]]:
    records = PartitionRecords(TP, MemoryRecords(raw), [], fetch_offset, None, None, False, 0)
    return [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in records]


def ours(raw: bytes, index: FetchIndex) -> list[tuple[int, int, bytes | None, bytes | None]]:
    def part(start: int, length: int) -> bytes | None:
        return None if length < 0 else raw[start : start + length]

    return [
        (int(o), int(t), part(int(ks), int(kl)), part(int(vs), int(vl)))
        for o, t, ks, kl, vs, vl in zip(
            index.offsets, index.timestamps_ms, index.key_starts, index.key_lengths,
            index.value_starts, index.value_lengths, strict=True,
        )
    ]  # fmt: skip


def fetch(rng: random.Random, batches: int, *, gaps: bool = False) -> tuple[bytes, int]:
    out, offset = b"", rng.randrange(0, 10**9)
    first = offset
    for _ in range(batches):
        count = rng.randrange(1, 60)
        out += batch(rng, offset, count, gaps=gaps)
        offset += count * (4 if gaps else 1) + rng.randrange(0, 3)
    return out, first


@pytest.mark.parametrize("seed", range(30))
def test_every_record_as_aiokafka_reads_it(seed: int) -> None:
    rng = random.Random(seed)
    raw, first = fetch(rng, rng.randrange(1, 6), gaps=seed % 3 == 0)
    expected = reference(raw, first)
    index = index_fetch(np.frombuffer(raw, dtype=np.uint8), first)
    assert index.status == OK
    assert ours(raw, index) == [r[:4] for r in expected]
    last = expected[-1][0]
    assert index.next_offset >= last + 1


def test_records_before_the_fetch_offset_are_skipped_and_a_partial_batch_is_left() -> None:
    rng = random.Random(5)
    first_batch = batch(rng, 100, 10)
    second_batch = batch(rng, 110, 10)
    raw = first_batch + second_batch[: len(second_batch) // 2]  # cut by the fetch size
    index = index_fetch(np.frombuffer(raw, dtype=np.uint8), 104)
    assert index.offsets.tolist() == list(range(104, 110))
    assert index.next_offset == 110  # the partial batch is fetched again
    assert ours(raw, index) == [r[:4] for r in reference(raw, 104)]


def test_control_batches_are_skipped_but_move_the_offset() -> None:
    rng = random.Random(6)
    control = bytearray(batch(rng, 50, 1))
    control[22] |= 0x20  # attributes: control batch (a transaction marker)
    data = batch(rng, 51, 3)
    index = index_fetch(np.frombuffer(bytes(control) + data, dtype=np.uint8), 50)
    assert index.offsets.tolist() == [51, 52, 53] and index.next_offset == 54


def test_compressed_batches_go_to_aiokafkas_path() -> None:
    raw = batch(random.Random(1), 0, 5, compression=1)  # gzip, built by aiokafka
    assert index_fetch(np.frombuffer(raw, dtype=np.uint8), 0).status == FALLBACK
    for codec in (2, 3, 4):  # snappy, lz4, zstd: the codec bits of the attributes
        marked = bytearray(batch(random.Random(1), 0, 5))
        marked[22] |= codec
        assert index_fetch(np.frombuffer(bytes(marked), dtype=np.uint8), 0).status == FALLBACK


@pytest.mark.parametrize("seed", range(200))
def test_damaged_bytes_never_crash_and_never_invent_records(seed: int) -> None:
    rng = random.Random(seed)
    raw, first = fetch(rng, 2)
    damaged = bytearray(raw)
    if seed % 2:
        for _ in range(rng.randrange(1, 20)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
    else:
        damaged = bytearray(rng.randbytes(rng.randrange(0, 4000)))
    index = index_fetch(np.frombuffer(bytes(damaged), dtype=np.uint8), first)
    assert index.status in (OK, FALLBACK, CORRUPT)
    for start, length in zip(index.value_starts, index.value_lengths, strict=True):
        assert length == -1 or 0 <= start <= start + length <= len(damaged)
