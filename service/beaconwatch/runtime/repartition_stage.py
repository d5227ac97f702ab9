"""The repartition stage: the collectors' topics in, flows keyed by internal host out.

It reads the collectors' topics (in consumer group `kafka.group_id`), decodes, scopes and
orients the flows (`core/repartition.py`), writes each batch's flows for one internal-topic
partition as one or a few `beaconwatch-flows` records, and dead-letters the records it cannot
decode. Its input offsets are committed once those writes are acknowledged (`ledger.py`), so a
crash re-reads and re-writes them: the detector merges a re-written flow as a duplicate of the
connection it already counted. It holds no state, so a rebalance only commits and moves on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Collection, Sequence

from aiokafka import TopicPartition

from beaconwatch.config import Config
from beaconwatch.core.alignment import EventTimeAligner
from beaconwatch.core.repartition import Repartitioner, Scoped
from beaconwatch.domain.stats import DetectorStats
from beaconwatch.metrics.prometheus import ServiceMetrics
from beaconwatch.runtime.backoff import Backoff
from beaconwatch.runtime.clients import Clients, kafka_clients
from beaconwatch.runtime.ledger import OffsetLedger
from beaconwatch.runtime.rebalance import RebalanceListener
from beaconwatch.runtime.resending_producer import ResendingProducer
from beaconwatch.sinks.base import Producer
from beaconwatch.sinks.dead_letter import DeadLetterSink
from beaconwatch.sources.base import Records, Source
from beaconwatch.sources.polled_columns import PolledColumns, polled_columns
from beaconwatch.sources.read_ahead import ReadAhead

log = logging.getLogger(__name__)

_MAX_IN_FLIGHT_BATCHES = 2
# Room left in a producer batch for the record's own framing and headers.
_RECORD_OVERHEAD_BYTES = 512
_FORMAT_HEADER = ("beaconwatch.format", b"beaconwatch-flows")
# Flows held for event-time alignment, at most (~100 bytes each): past it all are released.
MAX_HELD_FLOWS = 1_000_000


class RepartitionStage:
    name = "repartition"

    def __init__(
        self, config: Config, metrics: ServiceMetrics, *, clients: Clients | None = None
    ) -> None:
        self.config = config
        self._clients = clients if clients is not None else kafka_clients()
        self.metrics = metrics
        self.stats = DetectorStats()  # rejections and scope, counted apart from the detector's
        self.alive = False
        self.repartitioner: Repartitioner | None = None
        self._ledger: OffsetLedger | None = None
        self._batch_lock = asyncio.Lock()
        self.source: Source | None = None
        # Flows wait here until every input partition with records left has caught up with
        # them; up to half the detector's allowed lateness ahead of the slowest is let through.
        self._aligner: EventTimeAligner[TopicPartition] = EventTimeAligner(
            slack_ms=int(config.state.allowed_lateness_s * 1000) // 2,
            max_held_flows=MAX_HELD_FLOWS,
        )

    @property
    def assigned(self) -> set[TopicPartition]:
        return self._ledger.assigned if self._ledger is not None else set()

    @property
    def committed_offsets(self) -> dict[TopicPartition, int]:
        return dict(self._ledger.committed) if self._ledger is not None else {}

    def readiness_reasons(self) -> list[str]:
        if not self.alive:
            return ["repartition stage not running"]
        if not self.assigned:
            return [f"no partitions of {', '.join(self.config.kafka.input_topics)} assigned"]
        return []

    async def run(self, stop: asyncio.Event) -> None:
        kafka = self.config.kafka
        producer: Producer | None = None
        reader: ReadAhead | None = None
        try:
            producer = ResendingProducer(await self._clients.producer(kafka), Backoff.of(kafka))
            partitions = len(await producer.partitions_for(kafka.internal_topic))
            self.repartitioner = repartitioner = Repartitioner(
                self.config,
                partitions=partitions,
                max_record_bytes=kafka.producer_batch_bytes - _RECORD_OVERHEAD_BYTES,
                stats=self.stats,
            )
            await asyncio.to_thread(repartitioner.decoders.build_all)
            dead_letters = DeadLetterSink(producer, kafka.dead_letter_topic)
            self.source = source = self._clients.source(
                kafka,
                RebalanceListener(self._on_revoked, self._on_assigned),
                list(kafka.input_topics),
                kafka.group_id,
                True,  # raw fetches: values decoded where they lie, no record objects
            )
            self._ledger = ledger = OffsetLedger(source, retry_backoff=Backoff.of(kafka))
            await source.start()
            self.alive = True
            log.info(
                "repartition stage: %s -> %s (%d partitions, by internal host)",
                kafka.input_topics, kafka.internal_topic, partitions,
            )  # fmt: skip
            reader = ReadAhead(source)
            lagging: set[TopicPartition] = set()

            async def positions() -> None:  # of the records just polled, before the next poll
                # Only here, with no poll in flight: awaiting consumer positions during one
                # raced with its offset reset (a partition was never fetched).
                nonlocal lagging
                lagging = await source.lagging_partitions()
                self.metrics.repartition_lag_records.set(await source.lag_records())

            while not stop.is_set():
                records = await reader.poll(before_next=positions)
                async with self._batch_lock:
                    if records or self._aligner.held_flows:
                        await self._process_batch(records, lagging, producer, dead_letters)
                        await ledger.commit_acknowledged(max_in_flight=_MAX_IN_FLIGHT_BATCHES)
                    elif ledger.idle_work:
                        await ledger.commit_acknowledged(wait=True)
            await reader.close()
            async with self._batch_lock:
                await ledger.commit_acknowledged(wait=True)
        finally:
            if reader is not None:
                await reader.close()
            if self._ledger is not None:
                self._ledger.abandon()
            self.alive = False
            if self.source is not None:
                await self.source.stop()
                self.source = None
            if producer is not None:
                await producer.stop()
            if self._ledger is not None:
                self._ledger.assigned.clear()
                log.info("repartition stage stopped; committed offsets %s", self._ledger.committed)

    async def _process_batch(
        self,
        records: Records,
        lagging: set[TopicPartition],
        producer: Producer,
        dead_letters: DeadLetterSink,
    ) -> None:
        """Decode and scope the records read, then write every flow the input partitions'
        event-time alignment releases (`core/alignment.py`); its offsets are committed once
        those writes and the dead letters are acknowledged."""
        assert self._ledger is not None and self.repartitioner is not None
        started = time.perf_counter()
        repartitioner, aligner = self.repartitioner, self._aligner
        deliveries: list[asyncio.Future[object]] = []
        consumed = dead_lettered = 0
        for tp, msgs in records.items():
            if not msgs or tp not in self._ledger.assigned:
                continue
            polled, scoped = await asyncio.to_thread(_scope, repartitioner, msgs, tp.topic)
            offsets = polled.offsets
            aligner.add(tp, scoped.flows, offsets[scoped.flows.record_index], offsets[-1] + 1)
            deliveries.extend(await dead_letters.send_rejections(polled.records, scoped.rejections))
            dead_lettered += len(scoped.rejections)
            consumed += len(polled)
        released = aligner.release(lagging & self._ledger.assigned)
        if released.forced:
            self.metrics.alignment_forced.inc()
        grouped = await asyncio.to_thread(repartitioner.group, [released.flows])
        topic = self.config.kafka.internal_topic
        written = 0
        for partition, out in grouped.items():
            for value in out:
                deliveries.append(
                    await producer.send(topic, value, partition=partition, headers=[_FORMAT_HEADER])
                )
            written += len(out)
        commits = {
            tp: off for tp, off in released.commit_offsets.items() if isinstance(tp, TopicPartition)
        }
        self._ledger.sent(deliveries, commits)
        m = self.metrics
        m.flows_consumed.inc(consumed)
        m.repartition_flows.inc(len(released.flows))
        m.repartition_records.inc(written)
        m.repartition_held_flows.set(aligner.held_flows)
        if dead_lettered:
            m.dead_letter_records.inc(dead_lettered)
        m.publish_stats(self.stats)
        m.repartition_batch_duration_seconds.observe(time.perf_counter() - started)

    async def _on_revoked(self, revoked: Collection[TopicPartition]) -> None:
        async with self._batch_lock:
            assert self._ledger is not None
            await self._ledger.commit_revoked(revoked)
            self._aligner.forget(revoked)
            self._ledger.assigned.difference_update(revoked)
            self.metrics.repartition_partitions_assigned.set(len(self._ledger.assigned))

    async def _on_assigned(self, assigned: Collection[TopicPartition]) -> None:
        async with self._batch_lock:
            assert self._ledger is not None
            self._ledger.forget(self._ledger.committed.keys() - set(assigned))
            self._ledger.assigned = set(assigned)
            self.metrics.repartition_partitions_assigned.set(len(assigned))
            log.info(
                "repartition assigned partitions: %s",
                sorted(f"{t.topic}-{t.partition}" for t in assigned),
            )


def _scope(
    repartitioner: Repartitioner, msgs: Sequence[object], topic: str
) -> tuple[PolledColumns, Scoped]:
    """One partition's polled records (raw fetches or records) -> columns -> scoped flows."""
    polled = polled_columns(msgs)
    return polled, repartitioner.scope_buffer(polled.data, polled.starts, polled.lengths, topic)
