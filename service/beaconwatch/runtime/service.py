"""The Kafka service: consume flow records, run the pipeline, produce alerts and dead letters.

Delivery is at-least-once: the input offsets of a batch are committed only after every alert and
dead-letter record produced from it, and from every earlier batch, has been acknowledged by the
broker (acks=all). The next batch is processed while those acks are on their way (at most
`_MAX_IN_FLIGHT_BATCHES` unacknowledged). If a send fails, that batch and later ones are not
committed and the service stops with the error; a restart re-reads them. Detector state is
owned per input partition and checkpointed to a compacted state topic (`checkpointing.py`): a
partition assigned to this or any other instance resumes from its latest checkpoint.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace

from aiokafka import AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from prometheus_client import CollectorRegistry

from beaconwatch.alerting.alert import Alert
from beaconwatch.config import Config, ConfigError, KafkaConfig
from beaconwatch.core.pipeline import Pipeline
from beaconwatch.decode.base import Rejection
from beaconwatch.metrics.prometheus import ServiceMetrics
from beaconwatch.runtime.checkpointing import Checkpointer
from beaconwatch.runtime.checkpoints import KafkaCheckpointStore
from beaconwatch.runtime.http import HttpServer, Readiness
from beaconwatch.runtime.in_flight import Acknowledged, InFlightBatches
from beaconwatch.runtime.kafka_options import client_options, redacted
from beaconwatch.runtime.rebalance import RebalanceListener
from beaconwatch.runtime.topics import create_topics
from beaconwatch.sinks.dead_letter import DeadLetterSink
from beaconwatch.sinks.kafka import AlertSink
from beaconwatch.sources.kafka import KafkaFlowSource, Records

log = logging.getLogger(__name__)

_PROBE_INTERVAL_S = 5.0
# Output topics created by the service get this many partitions; size them yourself in
# production (pre-create the topics and set kafka.create_topics = false).
_OUTPUT_TOPIC_PARTITIONS = 1
# Batches whose outputs may await acks while the next is processed: enough to overlap the
# broker's round trip with our CPU, few enough to bound the memory of queued dead letters.
_MAX_IN_FLIGHT_BATCHES = 2


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class BeaconService:
    def __init__(
        self,
        config: Config,
        *,
        registry: CollectorRegistry | None = None,
        alert_listener: Callable[[Sequence[Alert]], None] | None = None,
        pipeline: Pipeline | None = None,
        wall_clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        self.config = config
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = ServiceMetrics.create(self.registry)
        self.pipeline = pipeline if pipeline is not None else Pipeline(config)
        self.metrics_url: str | None = None
        self._alert_listener = alert_listener
        self._wall_clock = wall_clock  # only for the event-time lag gauge
        self._alive = False
        self._broker_reachable = False
        self._assigned: set[TopicPartition] = set()
        self._revoked_pending: set[TopicPartition] = set()
        # Next offset per partition whose batch is fully processed and acknowledged.
        self._processed: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int] = {}
        # Held for a whole batch (process, send, commit) and by the revoke callback, which
        # aiokafka runs in its coordinator task: a rebalance waits for the batch in flight.
        self._batch_lock = asyncio.Lock()
        self._in_flight = InFlightBatches()
        self._source: KafkaFlowSource | None = None
        self._checkpointer: Checkpointer | None = None

    # -- health ---------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._alive

    @property
    def ready(self) -> bool:
        return self.readiness().ready

    def readiness(self) -> Readiness:
        reasons = []
        if not self._alive:
            reasons.append("service loop not running")
        if not self._assigned:
            reasons.append("no partitions assigned")
        if not self._broker_reachable:
            reasons.append("broker not reachable")
        return Readiness(ready=not reasons, reasons=tuple(reasons))

    @property
    def committed_offsets(self) -> dict[TopicPartition, int]:
        """Next offsets this instance committed, per partition (for tests and logs)."""
        return dict(self._committed)

    # -- main loop ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then finish the batch in flight, commit and shut down."""
        kafka = self.config.kafka
        options = client_options(kafka)
        http = HttpServer(
            self.registry,
            host=self.config.metrics.host,
            port=self.config.metrics.port,
            liveness=lambda: self._alive,
            readiness=self.readiness,
        )
        await http.start()
        self.metrics_url = http.url
        producer: AIOKafkaProducer | None = None
        probe: asyncio.Task[None] | None = None
        try:
            log.info(
                "beaconwatch starting: input=%s group=%s alerts=%s dead_letter=%s metrics=%s "
                "kafka=%s",
                kafka.input_topics,
                kafka.group_id,
                kafka.alerts_topic,
                kafka.dead_letter_topic,
                self.metrics_url,
                redacted(options),
            )
            if kafka.create_topics:
                created = await create_topics(
                    topics=dict.fromkeys(
                        (kafka.alerts_topic, kafka.dead_letter_topic), _OUTPUT_TOPIC_PARTITIONS
                    ),
                    **options,
                )
                if created:
                    log.info("created topics %s", created)
            # Tansu (and some managed services) lack idempotent producers, so it is opt-in;
            # acks=all plus commit-after-ack gives at-least-once without it.
            # Batches of up to producer_batch_bytes per partition: aiokafka keeps one batch in
            # flight per partition and its 16 KiB default made a storm of dead letters wait
            # for a broker round trip every ~15 records.
            producer = AIOKafkaProducer(
                acks="all",
                enable_idempotence=kafka.idempotent_producer,
                max_batch_size=kafka.producer_batch_bytes,
                linger_ms=kafka.producer_linger_ms,
                **options,
            )
            await _start_producer(producer, kafka)
            alerts = AlertSink(producer, kafka.alerts_topic)
            dead_letters = DeadLetterSink(producer, kafka.dead_letter_topic)
            if kafka.checkpoint_interval_s > 0:
                if kafka.create_topics:
                    await create_topics(
                        topics={kafka.state_topic: kafka.state_topic_partitions},
                        configs={kafka.state_topic: {"cleanup.policy": "compact"}},
                        **options,
                    )
                store = KafkaCheckpointStore(
                    producer, kafka.state_topic, kafka.state_topic_partitions, options
                )
                self._checkpointer = Checkpointer(
                    store, self.pipeline.detector, self.metrics, kafka.checkpoint_interval_s
                )
            # Compile the kernels before joining the group: records never wait on numba.
            await asyncio.to_thread(self.pipeline.warm_up)
            self._source = source = KafkaFlowSource(
                kafka, RebalanceListener(self._on_revoked, self._on_assigned)
            )
            await source.start()
            self._broker_reachable = True
            self._alive = True
            probe = asyncio.create_task(self._probe_loop(source), name="beaconwatch-probe")
            while not stop.is_set():
                records = await source.poll()
                async with self._batch_lock:
                    if records:
                        await self._process_batch(records, alerts, dead_letters)
                        if len(self._in_flight) > _MAX_IN_FLIGHT_BATCHES:
                            await self._in_flight.wait_oldest()
                        await self._commit_acknowledged(source)
                    elif self._in_flight:  # idle: commit everything sent so far
                        await self._commit_acknowledged(source, wait=True)
                    if self._checkpointer is not None and self._checkpointer.due:
                        await self._checkpoint(source)
                await self._update_gauges(source)
            log.info("stop requested: shutting down")
            async with self._batch_lock:
                await self._commit_acknowledged(source, wait=True)
                if self._checkpointer is not None:
                    await self._checkpoint(source)
        finally:
            self._in_flight.abandon()  # only after an error is anything left here
            self._alive = False
            if probe is not None:
                probe.cancel()
            if self._source is not None:
                await self._source.stop()
                self._source = None
            if producer is not None:
                await producer.stop()  # flushes anything still queued
            self._assigned.clear()
            self.metrics.partitions_assigned.set(0)
            await http.close()
            log.info("beaconwatch stopped; committed offsets %s", self._committed)

    async def _process_batch(
        self, records: Records, alert_sink: AlertSink, dead_letters: DeadLetterSink
    ) -> None:
        """Run the pipeline on a batch and queue its outputs; `_commit_acknowledged` commits
        its offsets once they are acknowledged."""
        started = time.perf_counter()
        deliveries: list[asyncio.Future[object]] = []
        next_offsets: dict[TopicPartition, int] = {}
        batch_alerts: list[Alert] = []
        consumed = dead_lettered = 0
        for tp, msgs in records.items():
            if not msgs:
                continue
            if tp not in self._assigned:
                continue  # revoked while this batch waited for the lock: not ours any more
            if self._checkpointer is not None and self._source is not None:
                seek_to = self._checkpointer.misplaced(tp, msgs[0].offset)
                if seek_to is not None:  # read before the restored partition's seek took
                    self._source.seek(tp, seek_to)
                    continue
            consumed += len(msgs)
            if self._checkpointer is not None:
                self._checkpointer.processed(tp, msgs[-1].offset + 1)
                replayed, live = self._checkpointer.split_replay(tp, msgs)
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
        self._in_flight.add(deliveries, next_offsets, batch_alerts)
        metrics = self.metrics
        metrics.flows_consumed.inc(consumed)
        if dead_lettered:
            metrics.dead_letter_records.inc(dead_lettered)  # queued; a failed send stops us
        metrics.publish_stats(self.pipeline.stats)
        metrics.set_event_time_lag(self._wall_clock(), self.pipeline.stats.watermark_ms)
        metrics.batch_duration_seconds.observe(time.perf_counter() - started)

    def _run_pipeline(
        self, tp: TopicPartition, msgs: list[ConsumerRecord[bytes, bytes]]
    ) -> tuple[list[Alert], list[Rejection]]:
        """Process one partition's records; rejections index into ``msgs``, in order."""
        outcome = self.pipeline.process_records(
            [m.value for m in msgs], partition=tp.partition, topic=tp.topic
        )
        alerts = [replace(alert, partition=tp.partition) for alert in outcome.alerts]
        return alerts, outcome.rejections

    async def _commit_acknowledged(self, source: KafkaFlowSource, *, wait: bool = False) -> None:
        """Commit the offsets of the batches whose outputs are acknowledged (all of them with
        ``wait``). A failed send raises out of run() with that batch uncommitted."""
        done = await self._in_flight.drain() if wait else self._in_flight.acknowledged()
        await self._commit(source, self._release(done))

    def _release(self, done: Acknowledged) -> dict[TopicPartition, int]:
        """Account for acknowledged batches; returns their offsets that are ours to commit."""
        # Offsets of partitions revoked meanwhile are the new owner's business now.
        next_offsets = {tp: off for tp, off in done.next_offsets.items() if tp in self._assigned}
        self._processed.update(next_offsets)
        if self._alert_listener is not None and done.alerts:
            self._alert_listener(done.alerts)
        return next_offsets

    async def _commit(
        self, source: KafkaFlowSource, next_offsets: dict[TopicPartition, int]
    ) -> None:
        if not next_offsets:
            return
        try:
            await source.commit(next_offsets)
        except CommitFailedError as exc:
            # The group rebalanced under us: the new owner re-reads from the last commit
            # (duplicates, never loss). Not fatal.
            log.warning("commit failed after a rebalance, records may be re-read: %s", exc)
            return
        self._committed.update(next_offsets)

    async def _checkpoint(self, source: KafkaFlowSource) -> None:
        """Checkpoint every assigned partition once every output of the records their state
        covers is acknowledged (drained) and their offsets are committed."""
        assert self._checkpointer is not None
        await self._commit_acknowledged(source, wait=True)
        await self._checkpointer.save(self._assigned)

    # -- rebalance ------------------------------------------------------------------------

    async def _on_revoked(self, revoked: Collection[TopicPartition]) -> None:
        async with self._batch_lock:
            # Batches sent from these partitions must be acknowledged before their offsets
            # are committed and the partitions handed over.
            self._release(await self._in_flight.drain())
            if self._source is not None:
                pending = {
                    tp: off
                    for tp, off in self._processed.items()
                    if tp in revoked and self._committed.get(tp) != off
                }
                try:
                    await self._source.commit(pending)
                    self._committed.update(pending)
                except KafkaError as exc:
                    log.warning("commit on revoke failed, records may be re-read: %s", exc)
                if self._checkpointer is not None:  # whoever gets them next resumes here
                    await self._checkpointer.save([tp for tp in revoked if tp in self._assigned])
            self._assigned.difference_update(revoked)
            # aiokafka rebalances eagerly: everything is revoked, then mostly re-assigned.
            # State is only dropped for partitions that do not come back (see _on_assigned).
            self._revoked_pending.update(revoked)
            self.metrics.partitions_assigned.set(len(self._assigned))

    async def _on_assigned(self, assigned: Collection[TopicPartition]) -> None:
        async with self._batch_lock:
            now = set(assigned)
            lost = self._revoked_pending - now
            self._revoked_pending.clear()
            if lost:
                # Checkpointed on revoke: their new owner restores them from the state topic.
                dropped = self.pipeline.drop_topic_partitions(
                    sorted((tp.topic, tp.partition) for tp in lost)
                )
                log.info("dropped state of %d pairs of revoked partitions %s", dropped, lost)
            for tp in lost:
                self._processed.pop(tp, None)
                self._committed.pop(tp, None)
            if self._checkpointer is not None:
                self._checkpointer.forget(lost)
                held = self.pipeline.detector.partitions
                gained = [tp for tp in assigned if (tp.topic, tp.partition) not in held]
                if self._source is not None:
                    await self._checkpointer.restore(self._source, gained)
            # Only now: readiness and the batches wait until the restores are done.
            self._assigned = now
            self.metrics.partitions_assigned.set(len(self._assigned))
            self.metrics.publish_stats(self.pipeline.stats)
            log.info(
                "assigned partitions: %s", sorted(f"{t.topic}-{t.partition}" for t in assigned)
            )

    # -- gauges and probes ----------------------------------------------------------------

    async def _update_gauges(self, source: KafkaFlowSource) -> None:
        self.metrics.consumer_lag_records.set(await source.lag_records())
        if self._checkpointer is not None:
            self._checkpointer.publish_age()
        self.metrics.partitions_assigned.set(len(self._assigned))

    async def _probe_loop(self, source: KafkaFlowSource) -> None:
        while True:
            await asyncio.sleep(_PROBE_INTERVAL_S)
            self._broker_reachable = await source.probe()


async def _start_producer(producer: AIOKafkaProducer, kafka: KafkaConfig) -> None:
    """Start the output producer; an idempotent one the broker refuses is a config error."""
    try:
        await producer.start()  # an idempotent producer asks for its producer id here
    except KafkaError as exc:
        await producer.stop()
        if not kafka.idempotent_producer:
            raise
        raise ConfigError(
            f"kafka.idempotent_producer = true, but the broker at {kafka.bootstrap_servers} "
            f"refused an idempotent producer ({exc!r}); set it false for brokers without "
            "idempotent producers (the embedded Tansu broker, some managed services)"
        ) from exc
