"""The detector stage: consume flows, run the pipeline, produce alerts and dead letters.

It reads the internal topic the repartition stage writes (flows keyed by internal host), or
the collectors' topics themselves when they are keyed by host (`kafka.input_keyed_by_host`).
Delivery is at-least-once (`ledger.py`): input offsets are committed after the alerts and
dead letters of their batch are acknowledged, while the next batch is processed (at most
`_MAX_IN_FLIGHT_BATCHES` unacknowledged). A failed send stops the stage with that batch
uncommitted. State is owned per input partition and checkpointed to a compacted state topic
(`checkpointing.py`): a partition assigned to this or any other instance resumes from its
latest checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace

from aiokafka import ConsumerRecord, TopicPartition

from beaconwatch.alerting.alert import Alert
from beaconwatch.alerting.formats import alert_encoder
from beaconwatch.alerting.log_line import log_alerts
from beaconwatch.config import Config
from beaconwatch.core.host_owners import HostOwners
from beaconwatch.core.pipeline import Pipeline
from beaconwatch.domain.rejections import Rejection
from beaconwatch.metrics.prometheus import ServiceMetrics
from beaconwatch.runtime.backoff import Backoff
from beaconwatch.runtime.checkpointing import Checkpointer
from beaconwatch.runtime.clients import Clients, kafka_clients
from beaconwatch.runtime.ledger import OffsetLedger
from beaconwatch.runtime.rebalance import RebalanceListener
from beaconwatch.runtime.resending_producer import ResendingProducer
from beaconwatch.runtime.topics import service_topic_configs
from beaconwatch.sinks.base import Producer
from beaconwatch.sinks.dead_letter import DeadLetterSink
from beaconwatch.sinks.kafka import AlertSink
from beaconwatch.sources.base import Records, Source
from beaconwatch.sources.read_ahead import ReadAhead

log = logging.getLogger(__name__)

# At most one warning about fast exporter clocks per this many seconds (each names a flow).
CLOCK_AHEAD_WARNING_EVERY_S = 60.0

# Batches whose outputs may await acks while the next is processed: enough to overlap the
# broker's round trip with our CPU, few enough to bound the memory of queued dead letters.
_MAX_IN_FLIGHT_BATCHES = 2


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class DetectStage:
    name = "detect"

    def __init__(
        self,
        config: Config,
        metrics: ServiceMetrics,
        *,
        pipeline: Pipeline | None = None,
        alert_listener: Callable[[Sequence[Alert]], None] | None = None,
        wall_clock: Callable[[], int] = wall_clock_ms,
        clients: Clients | None = None,
    ) -> None:
        self.config = config
        self._clients = clients if clients is not None else kafka_clients()
        self.metrics = metrics
        kafka = config.kafka
        self.topics = (
            list(kafka.input_topics) if kafka.input_keyed_by_host else [kafka.internal_topic]
        )
        if pipeline is None:
            decoder = None
            if not kafka.input_keyed_by_host:
                from beaconwatch.decode.flow_columns import FlowColumnsDecoder

                decoder = FlowColumnsDecoder()
            pipeline = Pipeline(config, decoder=decoder, report_source_hosts=True)
        self.pipeline = pipeline
        self._alert_listener = alert_listener
        self._wall_clock = wall_clock  # only for the event-time lag gauge
        self.alive = False
        self._revoked_pending: set[TopicPartition] = set()
        # Held for a whole batch (process, send, commit) and by the revoke callback, which
        # aiokafka runs in its coordinator task: a rebalance waits for the batch in flight.
        self._batch_lock = asyncio.Lock()
        self._ledger: OffsetLedger | None = None
        self.source: Source | None = None
        self._checkpointer: Checkpointer | None = None
        # Hosts seen on two partitions: collectors that do not key by host after all.
        self.host_owners = HostOwners()
        self._ahead_warned_total = 0
        self._ahead_warned_at = float("-inf")

    @property
    def assigned(self) -> set[TopicPartition]:
        return self._ledger.assigned if self._ledger is not None else set()

    @property
    def committed_offsets(self) -> dict[TopicPartition, int]:
        return dict(self._ledger.committed) if self._ledger is not None else {}

    def _on_published(self, alerts: Sequence[Alert]) -> None:
        """Alerts the broker acknowledged: one log line each, then the listener (tests)."""
        log_alerts(alerts)
        if self._alert_listener is not None:
            self._alert_listener(alerts)

    def readiness_reasons(self) -> list[str]:
        reasons = []
        if not self.alive:
            reasons.append("detector stage not running")
        elif not self.assigned:
            reasons.append(f"no partitions of {', '.join(self.topics)} assigned")
        return reasons

    # -- main loop ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then finish the batch in flight, commit, checkpoint and
        leave the group."""
        kafka = self.config.kafka
        clients = self._clients
        producer: Producer | None = None
        reader: ReadAhead | None = None
        try:
            # Tansu (and some managed services) lack idempotent producers, so it is opt-in;
            # acks=all plus commit-after-ack gives at-least-once without it.
            producer = ResendingProducer(await clients.producer(kafka), Backoff.of(kafka))
            alerts = AlertSink(producer, kafka.alerts_topic, encode=alert_encoder(self.config))
            dead_letters = DeadLetterSink(producer, kafka.dead_letter_topic)
            if kafka.checkpoint_interval_s > 0:
                if kafka.create_topics:
                    await clients.create_topics(
                        kafka,
                        {kafka.state_topic: kafka.state_topic_partitions},
                        service_topic_configs(kafka),
                    )
                store = clients.checkpoint_store(producer, kafka)
                self._checkpointer = Checkpointer(
                    store, self.pipeline.detector, self.metrics, kafka.checkpoint_interval_s
                )
            # Compile the kernels before joining the group: records never wait on numba.
            await asyncio.to_thread(self.pipeline.warm_up)
            self.source = source = clients.source(
                kafka,
                RebalanceListener(self._on_revoked, self._on_assigned),
                self.topics,
                kafka.detect_group,
                False,
            )
            self._ledger = ledger = OffsetLedger(
                source, alert_listener=self._on_published, retry_backoff=Backoff.of(kafka)
            )
            await source.start()
            self.alive = True
            reader = ReadAhead(source)
            while not stop.is_set():
                # The lag is read between polls: awaiting consumer positions while a poll
                # is in flight raced with its offset reset (a partition was never fetched).
                records = await reader.poll(before_next=lambda: self._update_lag(source))
                async with self._batch_lock:
                    if self._checkpointer is not None:
                        for tp, offset in self._checkpointer.take_seeks().items():
                            if tp in ledger.assigned:
                                source.seek(tp, offset)
                    if records:
                        await self._process_batch(records, alerts, dead_letters)
                        await ledger.commit_acknowledged(max_in_flight=_MAX_IN_FLIGHT_BATCHES)
                    elif ledger.idle_work:  # idle: commit everything sent so far
                        await ledger.commit_acknowledged(wait=True)
                    if self._checkpointer is not None and self._checkpointer.due:
                        await self._checkpoint()
                self._update_gauges()
            log.info("detector stage stopping")
            await reader.close()
            async with self._batch_lock:
                await ledger.commit_acknowledged(wait=True)
                if self._checkpointer is not None:
                    await self._checkpoint()
        finally:
            if reader is not None:
                await reader.close()
            if self._ledger is not None:
                self._ledger.abandon()  # only after an error is anything left here
            self.alive = False
            if self.source is not None:
                await self.source.stop()
                self.source = None
            if producer is not None:
                await producer.stop()  # flushes anything still queued
            if self._ledger is not None:
                self._ledger.assigned.clear()
                log.info("detector stage stopped; committed offsets %s", self._ledger.committed)

    async def _process_batch(
        self, records: Records, alert_sink: AlertSink, dead_letters: DeadLetterSink
    ) -> None:
        """Run the pipeline on a batch and queue its outputs; the ledger commits its offsets
        once they are acknowledged."""
        assert self._ledger is not None and self.source is not None
        started = time.perf_counter()
        deliveries: list[asyncio.Future[object]] = []
        next_offsets: dict[TopicPartition, int] = {}
        batch_alerts: list[Alert] = []
        consumed = dead_lettered = 0
        checkpointer = self._checkpointer
        for tp, msgs in records.items():
            if not msgs:
                continue
            if tp not in self._ledger.assigned:
                continue  # revoked while this batch waited for the lock: not ours any more
            if checkpointer is not None:
                seek_to = checkpointer.misplaced(tp, msgs[0].offset)
                if seek_to is not None:  # read before the restored partition's seek took
                    self.source.seek(tp, seek_to)
                    continue
            consumed += len(msgs)
            if checkpointer is not None:
                checkpointer.processed(tp, msgs[-1].offset + 1)
                replayed, live = checkpointer.split_replay(tp, msgs)
                if replayed:  # published before the restart: rebuild state, publish nothing
                    await asyncio.to_thread(self._run_pipeline, tp, list(replayed))
                    self.metrics.records_replayed.inc(len(replayed))
                if not live:
                    continue
                msgs = list(live)
            # In a worker thread: the numba kernels release the GIL, so aiokafka's fetcher
            # keeps receiving the next batch on the event loop while this one is processed.
            alerts, rejections = await asyncio.to_thread(self._run_pipeline, tp, msgs)
            batch_alerts.extend(alerts)
            deliveries.extend(await alert_sink.send(alerts))
            deliveries.extend(await dead_letters.send_rejections(msgs, rejections))
            dead_lettered += len(rejections)
            next_offsets[tp] = msgs[-1].offset + 1
        self._ledger.sent(deliveries, next_offsets, batch_alerts)
        metrics = self.metrics
        if self.config.kafka.input_keyed_by_host:
            metrics.flows_consumed.inc(consumed)
        else:
            metrics.internal_records_consumed.inc(consumed)
        if dead_lettered:
            metrics.dead_letter_records.inc(dead_lettered)  # queued; a failed send stops us
        metrics.publish_stats(self.pipeline.stats)
        metrics.set_event_time_lag(self._wall_clock(), self.pipeline.stats.watermark_ms)
        metrics.batch_duration_seconds.observe(time.perf_counter() - started)
        self._warn_clock_ahead()

    def _warn_clock_ahead(self) -> None:
        """Name a flow from an exporter whose clock is fast, at most once a minute."""
        stats = self.pipeline.stats
        new = stats.flows_ahead_total - self._ahead_warned_total
        now = time.monotonic()
        example = stats.ahead_example
        if new <= 0 or example is None or now - self._ahead_warned_at < CLOCK_AHEAD_WARNING_EVERY_S:
            return
        self._ahead_warned_total, self._ahead_warned_at = stats.flows_ahead_total, now
        log.warning(
            "%d flows ahead of the wall clock by more than state.clock_tolerance_s (%g s) since "
            "the last warning, the latest %s -> %s:%d, %.0f s ahead: an exporter's clock is "
            "fast. They are kept, but do not move event time (beaconwatch_flows_ahead_total).",
            new, self.config.state.clock_tolerance_s, example.src_ip, example.dst_ip,
            example.dst_port, example.ahead_s,
        )  # fmt: skip

    def _run_pipeline(
        self, tp: TopicPartition, msgs: list[ConsumerRecord[bytes, bytes]]
    ) -> tuple[list[Alert], list[Rejection]]:
        """Process one partition's records; rejections index into ``msgs``, in order."""
        outcome = self.pipeline.process_records(
            [m.value for m in msgs], partition=tp.partition, topic=tp.topic
        )
        newly_split = self.host_owners.observe(tp, outcome.source_hosts)
        self.metrics.hosts_split.inc(newly_split)
        if newly_split:
            log.warning(
                "%d internal hosts arrived on %s after another partition (%d so far): their "
                "pairs' state is split. Is the input keyed by source host? "
                "(kafka.input_keyed_by_host, docs/operations.md)",
                newly_split, tp, self.host_owners.split_hosts,
            )  # fmt: skip
        alerts = [replace(alert, partition=tp.partition) for alert in outcome.alerts]
        return alerts, outcome.rejections

    async def _checkpoint(self) -> None:
        """Checkpoint every assigned partition once every output of the records their state
        covers is acknowledged (drained) and their offsets are committed."""
        assert self._checkpointer is not None and self._ledger is not None
        await self._ledger.commit_acknowledged(wait=True)
        await self._checkpointer.save(self._ledger.assigned)

    # -- rebalance ------------------------------------------------------------------------

    async def _on_revoked(self, revoked: Collection[TopicPartition]) -> None:
        async with self._batch_lock:
            ledger = self._ledger
            assert ledger is not None
            # Batches sent from these partitions must be acknowledged before their offsets
            # are committed and the partitions handed over.
            await ledger.commit_revoked(revoked)
            if self._checkpointer is not None:  # whoever gets them next resumes here
                await self._checkpointer.save([tp for tp in revoked if tp in ledger.assigned])
            ledger.assigned.difference_update(revoked)
            # aiokafka rebalances eagerly: everything is revoked, then mostly re-assigned.
            # State is only dropped for partitions that do not come back (see _on_assigned).
            self._revoked_pending.update(revoked)
            self.metrics.partitions_assigned.set(len(ledger.assigned))

    async def _on_assigned(self, assigned: Collection[TopicPartition]) -> None:
        async with self._batch_lock:
            ledger = self._ledger
            assert ledger is not None
            now = set(assigned)
            lost = self._revoked_pending - now
            self._revoked_pending.clear()
            if lost:
                # Checkpointed on revoke: their new owner restores them from the state topic.
                dropped = self.pipeline.drop_topic_partitions(
                    sorted((tp.topic, tp.partition) for tp in lost)
                )
                self.host_owners.forget(lost)
                log.info("dropped state of %d pairs of revoked partitions %s", dropped, lost)
            ledger.forget(lost)
            if self._checkpointer is not None:
                self._checkpointer.forget(lost)
                held = self.pipeline.detector.partitions
                gained = [tp for tp in assigned if (tp.topic, tp.partition) not in held]
                if self.source is not None:
                    await self._checkpointer.restore(self.source, gained)
            # Only now: readiness and the batches wait until the restores are done.
            ledger.assigned = now
            self.metrics.partitions_assigned.set(len(now))
            self.metrics.publish_stats(self.pipeline.stats)
            log.info(
                "detector assigned partitions: %s",
                sorted(f"{t.topic}-{t.partition}" for t in assigned),
            )

    # -- gauges ---------------------------------------------------------------------------

    async def _update_lag(self, source: Source) -> None:
        self.metrics.consumer_lag_records.set(await source.lag_records())

    def _update_gauges(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.publish_age()
        self.metrics.partitions_assigned.set(len(self.assigned))
