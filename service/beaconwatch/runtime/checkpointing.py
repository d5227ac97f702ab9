"""When partition state is checkpointed and how an assigned partition resumes from it.

Consistency rule: a checkpoint is written only after every output (alert, dead letter) of the
records it covers is acknowledged, so "covered by the checkpoint" implies "published". The
service drains its in-flight batches before it calls `save`.

On assign, a partition with a checkpoint covering input offset C resumes like this, with K the
group's committed offset:

    C >= K (or no commit): seek to C; everything before C is in the restored state.
    C <  K: seek to C and process [C, K) again *without* publishing: its alerts and dead
            letters went out before K was committed (the service commits only after acks).
            Alert ids are deterministic, so the state ends where it was.

A partition without a usable checkpoint starts empty at K, as without checkpoints; the
reason is counted (`beaconwatch_checkpoint_restores_total{result}`) and logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Sequence
from typing import Protocol, TypeVar

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from beaconwatch.core.detector import Detector
from beaconwatch.metrics.prometheus import ServiceMetrics
from beaconwatch.runtime.checkpoints import Checkpoint
from beaconwatch.runtime.clients import CheckpointStore
from beaconwatch.state.snapshot import SnapshotError

log = logging.getLogger(__name__)


class _HasOffset(Protocol):
    @property
    def offset(self) -> int: ...


M = TypeVar("M", bound=_HasOffset)


class Offsets(Protocol):
    async def committed(self, tp: TopicPartition) -> int | None: ...


def partition_key(tp: TopicPartition) -> tuple[str, int]:
    return (tp.topic, tp.partition)


class Checkpointer:
    def __init__(
        self,
        store: CheckpointStore,
        detector: Detector,
        metrics: ServiceMetrics,
        interval_s: float,
    ) -> None:
        self._store = store
        self._detector = detector
        self._metrics = metrics
        self._interval_s = interval_s
        self._last_s = time.monotonic()  # last attempt: the schedule
        self._last_complete_s = self._last_s  # last time every partition was written: the age
        # Next input offset the in-memory state of each partition covers, and that of its
        # latest checkpoint in the state topic: a partition with nothing new is not rewritten.
        self._state_offset: dict[TopicPartition, int] = {}
        self._saved_offset: dict[TopicPartition, int] = {}
        # Records below this offset were published before: replay them silently.
        self._replay_until: dict[TopicPartition, int] = {}
        # Where a restored partition must be read from. aiokafka positions an assigned
        # partition at the committed offset itself, and a seek from the assign callback races
        # with its prefetch (records were read twice), so the service seeks when the
        # partition's first batch starts elsewhere (`misplaced`).
        self._resume_at: dict[TopicPartition, int] = {}
        # Restored partitions not yet sought to their checkpoint's offset: the service seeks
        # them from its batch loop right after the assignment, so the replay does not wait
        # for new records to arrive on them (`misplaced` catches a batch prefetched before).
        self._to_seek: dict[TopicPartition, int] = {}

    @property
    def due(self) -> bool:
        return time.monotonic() - self._last_s >= self._interval_s

    def processed(self, tp: TopicPartition, next_offset: int) -> None:
        self._state_offset[tp] = next_offset

    def misplaced(self, tp: TopicPartition, first_offset: int) -> int | None:
        """The offset to seek to when a restored partition's first batch starts elsewhere
        (the batch is then dropped: it will be read again), else None."""
        resume = self._resume_at.get(tp)
        if resume is None:
            return None
        if first_offset == resume:
            del self._resume_at[tp]
            return None
        return resume

    def take_seeks(self) -> dict[TopicPartition, int]:
        """Restored partitions to seek to their checkpoint's offset now (once each)."""
        seeks, self._to_seek = self._to_seek, {}
        return seeks

    def split_replay(
        self, tp: TopicPartition, msgs: Sequence[M]
    ) -> tuple[Sequence[M], Sequence[M]]:
        """(records to process silently, records to process and publish)."""
        until = self._replay_until.get(tp)
        if until is None:
            return (), msgs
        cut = 0
        while cut < len(msgs) and msgs[cut].offset < until:
            cut += 1
        if cut < len(msgs):
            del self._replay_until[tp]
        return msgs[:cut], msgs[cut:]

    def forget(self, tps: Collection[TopicPartition]) -> None:
        for tp in tps:
            self._state_offset.pop(tp, None)
            self._saved_offset.pop(tp, None)
            self._replay_until.pop(tp, None)
            self._resume_at.pop(tp, None)
            self._to_seek.pop(tp, None)

    async def save(self, tps: Collection[TopicPartition]) -> None:
        """Checkpoint these partitions (their outputs must be acknowledged already)."""
        started = time.monotonic()
        failed = 0
        for tp in sorted(tps):
            offset = self._state_offset.get(tp)
            if offset is None or offset == self._saved_offset.get(tp):
                continue  # nothing read since assign, or nothing since its latest checkpoint
            key = partition_key(tp)
            try:
                data = await asyncio.to_thread(
                    self._detector.snapshot_partition, key, input_offset=offset
                )
                written = await self._store.save(tp, data, offset)
            except Exception as exc:
                self._metrics.checkpoints.labels(result="failed").inc()
                failed += 1
                log.warning("checkpoint of %s failed, will retry: %r", tp, exc)
                continue
            self._saved_offset[tp] = offset
            self._metrics.checkpoints.labels(result="written").inc()
            self._metrics.checkpoint_bytes.inc(written)
        self._last_s = time.monotonic()
        if not failed:
            self._last_complete_s = self._last_s
        self.publish_age()
        log.debug("checkpointed %d partitions in %.2f s", len(tps), self._last_s - started)

    def publish_age(self) -> None:
        self._metrics.checkpoint_age_seconds.set(time.monotonic() - self._last_complete_s)

    async def restore(self, source: Offsets, tps: Collection[TopicPartition]) -> None:
        """Restore newly assigned partitions from their checkpoints and position them."""
        if not tps:
            return
        try:
            found = await self._store.load(tps)
        except (KafkaError, OSError, TimeoutError) as exc:
            for _ in tps:
                self._metrics.checkpoint_restores.labels(result="unreadable").inc()
            log.warning("state topic unreadable (%r): %d partitions start empty", exc, len(tps))
            return
        for tp in sorted(tps):
            checkpoint = found[tp]
            if not isinstance(checkpoint, Checkpoint):
                self._metrics.checkpoint_restores.labels(result=checkpoint.reason).inc()
                log.info("no checkpoint restored for %s (%s: %s): its state starts empty",
                         tp, checkpoint.reason, checkpoint.detail)  # fmt: skip
                continue
            try:
                await asyncio.to_thread(
                    self._detector.restore_partition, partition_key(tp), checkpoint.data
                )
            except SnapshotError as exc:
                self._metrics.checkpoint_restores.labels(result=exc.reason).inc()
                log.warning("checkpoint of %s not restored (%s): its state starts empty", tp, exc)
                continue
            committed = await source.committed(tp)
            resume = checkpoint.input_offset
            self._resume_at[tp] = self._to_seek[tp] = resume
            self._state_offset[tp] = self._saved_offset[tp] = resume
            if committed is not None and committed > resume:
                self._replay_until[tp] = committed
            self._metrics.checkpoint_restores.labels(result="restored").inc()
            pairs = self._detector.partitions[partition_key(tp)].table.tracked_pairs
            log.info(
                "restored %s from its checkpoint: %d pairs, %d bytes, from offset %d "
                "(committed %s: %d records to replay without publishing)",
                tp, pairs, len(checkpoint.data), resume, committed,
                max(0, (committed or resume) - resume),
            )  # fmt: skip
