"""Checkpoints of partition state in a compacted Kafka topic (the service's changelog).

A checkpoint of input partition (topic, p) is its state snapshot (`state.snapshot`, with the
input offset it covers) cut into chunks of at most `CHUNK_BYTES`, then a manifest written after
every chunk is acknowledged. Keys are ``topic/p/00000``... and ``topic/p/manifest``, so a
compacted topic keeps the latest chunk of each number and the latest manifest; chunks left over
from an older, longer checkpoint are deleted with tombstones. All records of one input
partition go to one partition of the state topic (`state_partition`), so a restore reads one
state partition, whichever instance or machine does it.

Reading: the last manifest of the input partition names its checkpoint id, chunk count and
sha256; chunks carry the id they belong to. A missing, incomplete or damaged checkpoint
is reported as such (the service then replays from the committed offset with empty state).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import struct
import time
import zlib
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from beaconwatch.sinks.base import Producer

log = logging.getLogger(__name__)

CHUNK_BYTES = 900_000  # under the broker's default message.max.bytes (1 MiB) with headers
MANIFEST_VERSION = 1
_CHUNK_HEAD = struct.Struct("<8sQI")  # magic, checkpoint id, chunk index
_CHUNK_MAGIC = b"BWCHUNK\0"


def state_partition(tp: TopicPartition, partitions: int) -> int:
    """The state-topic partition of an input partition (stable across processes)."""
    return int((zlib.crc32(tp.topic.encode()) + tp.partition) % partitions)


def _prefix(group: str, tp: TopicPartition) -> str:
    """Keys of one partition's checkpoint: the consumer group is part of them, so deployments
    that share a state topic (another group id on the same cluster) never restore each
    other's state."""
    return f"{group}/{tp.topic}/{tp.partition}/"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    data: bytes  # the snapshot
    input_offset: int  # next input offset the snapshot covers
    checkpoint_id: int  # time.time_ns() when it was written


@dataclass(frozen=True, slots=True)
class Missing:
    """No usable checkpoint; ``reason``: none | incomplete | corrupt."""

    reason: str
    detail: str


class KafkaCheckpointStore:
    def __init__(
        self,
        producer: Producer,
        topic: str,
        partitions: int,
        client_options: dict[str, Any],
        *,
        group: str,
    ) -> None:
        self._producer = producer
        self.group = group
        self.topic = topic
        self.partitions = partitions
        self._options = client_options
        self._chunks_written: dict[TopicPartition, int] = {}

    async def save(self, tp: TopicPartition, data: bytes, input_offset: int) -> int:
        """Write one checkpoint and wait until the broker has all of it; returns its bytes."""
        checkpoint_id = time.time_ns()
        partition = state_partition(tp, self.partitions)
        prefix = _prefix(self.group, tp)
        pending = []
        chunks = max(1, -(-len(data) // CHUNK_BYTES))
        view = memoryview(data)
        for i in range(chunks):
            head = _CHUNK_HEAD.pack(_CHUNK_MAGIC, checkpoint_id, i)
            body = head + view[i * CHUNK_BYTES : (i + 1) * CHUNK_BYTES]
            key = f"{prefix}{i:05d}".encode()
            pending.append(
                await self._producer.send(self.topic, body, key=key, partition=partition)
            )
        await asyncio.gather(*pending)
        manifest = {
            "version": MANIFEST_VERSION,
            "checkpoint_id": checkpoint_id,
            "chunks": chunks,
            "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "input_offset": input_offset,
            "created_ms": checkpoint_id // 1_000_000,
        }
        key = f"{prefix}manifest".encode()
        value = json.dumps(manifest).encode()
        await (await self._producer.send(self.topic, value, key=key, partition=partition))
        # Chunks past this checkpoint's end belong to an older, longer one: delete them.
        stale = [
            await self._producer.send(
                self.topic, None, key=f"{prefix}{i:05d}".encode(), partition=partition
            )
            for i in range(chunks, self._chunks_written.get(tp, 0))
        ]
        await asyncio.gather(*stale)
        self._chunks_written[tp] = chunks
        return len(data)

    async def load(
        self, tps: Collection[TopicPartition]
    ) -> dict[TopicPartition, Checkpoint | Missing]:
        """The latest complete checkpoint of each input partition, read from the state topic."""
        wanted = {_prefix(self.group, tp): tp for tp in tps}
        by_partition: dict[int, list[TopicPartition]] = {}
        for tp in tps:
            by_partition.setdefault(state_partition(tp, self.partitions), []).append(tp)
        manifests: dict[TopicPartition, dict[str, Any]] = {}
        chunks: dict[TopicPartition, dict[tuple[int, int], bytes]] = {tp: {} for tp in tps}
        consumer = AIOKafkaConsumer(
            enable_auto_commit=False,
            group_id=None,
            max_partition_fetch_bytes=16 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
            **self._options,
        )
        await consumer.start()
        try:
            sps = [TopicPartition(self.topic, p) for p in by_partition]
            consumer.assign(sps)
            await consumer.seek_to_beginning(*sps)
            ends = await consumer.end_offsets(sps)
            left = {sp for sp in sps if ends[sp] > 0}
            while left:
                batch = await consumer.getmany(*left, timeout_ms=1000)
                for msgs in batch.values():
                    for msg in msgs:
                        _take(msg.key, msg.value, wanted, manifests, chunks)
                for sp in list(left):
                    if await consumer.position(sp) >= ends[sp]:
                        left.discard(sp)
        finally:
            await consumer.stop()
        return {tp: _assemble(manifests.get(tp), chunks[tp]) for tp in tps}


def _take(
    key: bytes | None,
    value: bytes | None,
    wanted: dict[str, TopicPartition],
    manifests: dict[TopicPartition, dict[str, Any]],
    chunks: dict[TopicPartition, dict[tuple[int, int], bytes]],
) -> None:
    if key is None:
        return
    prefix, _, name = key.decode(errors="replace").rpartition("/")
    tp = wanted.get(prefix + "/")
    if tp is None or value is None:
        return
    if name == "manifest":
        try:
            manifest = json.loads(value)
        except ValueError:
            return
        manifests[tp] = manifest
        # Chunks of older checkpoints are no longer needed (the log is uncompacted on
        # brokers without compaction, so do not hold every checkpoint ever written).
        newest = int(manifest.get("checkpoint_id", 0))
        own = chunks[tp]
        for old in [k for k in own if k[0] < newest]:
            del own[old]
        return
    if len(value) < _CHUNK_HEAD.size:
        return
    magic, checkpoint_id, index = _CHUNK_HEAD.unpack_from(value)
    if magic == _CHUNK_MAGIC:
        chunks[tp][checkpoint_id, index] = value[_CHUNK_HEAD.size :]


def _assemble(
    manifest: dict[str, Any] | None, chunks: dict[tuple[int, int], bytes]
) -> Checkpoint | Missing:
    if manifest is None:
        return Missing("none", "no checkpoint in the state topic")
    if manifest.get("version") != MANIFEST_VERSION:
        return Missing("corrupt", f"manifest version {manifest.get('version')!r}")
    checkpoint_id = int(manifest["checkpoint_id"])
    parts = [chunks.get((checkpoint_id, i)) for i in range(int(manifest["chunks"]))]
    if any(part is None for part in parts):
        found = sum(part is not None for part in parts)
        return Missing("incomplete", f"{found} of {len(parts)} chunks of {checkpoint_id}")
    data = b"".join(part for part in parts if part is not None)
    if len(data) != manifest["bytes"] or hashlib.sha256(data).hexdigest() != manifest["sha256"]:
        return Missing("corrupt", f"checkpoint {checkpoint_id} does not match its manifest")
    return Checkpoint(data, int(manifest["input_offset"]), checkpoint_id)
