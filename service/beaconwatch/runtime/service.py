"""One beaconwatch process: its stages, one metrics registry, one HTTP endpoint, one stop.

Roles (`beaconwatch run --role`):

    all          the repartition stage and the detector stage, in one process (the default)
    repartition  collectors' topics -> internal topic, keyed by internal host
    detect       internal topic -> detector state -> alerts

With `kafka.input_keyed_by_host` there is no repartition stage: the detector stage reads the
collectors' topics itself (roles all and detect). The stages share the event loop; their
numba kernels run in worker threads and release the GIL, so they overlap. If one stage fails,
the other is stopped gracefully and the error is raised.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Literal, Protocol

from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from beaconwatch.alerting.alert import Alert
from beaconwatch.config import Config, ConfigError
from beaconwatch.core.pipeline import Pipeline
from beaconwatch.metrics.prometheus import ServiceMetrics
from beaconwatch.runtime.clients import Clients, kafka_clients
from beaconwatch.runtime.connectivity import Connectivity
from beaconwatch.runtime.detect_stage import DetectStage, wall_clock_ms
from beaconwatch.runtime.http import HttpServer, Readiness
from beaconwatch.runtime.kafka_options import client_options, redacted
from beaconwatch.runtime.repartition_stage import RepartitionStage
from beaconwatch.runtime.topics import service_topic_configs
from beaconwatch.sources.base import Source

log = logging.getLogger(__name__)

Role = Literal["all", "repartition", "detect"]

_PROBE_INTERVAL_S = 5.0


class Stage(Protocol):
    name: str
    alive: bool
    source: Source | None  # while running

    @property
    def committed_offsets(self) -> dict[TopicPartition, int]: ...

    def readiness_reasons(self) -> list[str]: ...

    async def run(self, stop: asyncio.Event) -> None: ...


class BeaconService:
    def __init__(
        self,
        config: Config,
        *,
        role: Role = "all",
        registry: CollectorRegistry | None = None,
        alert_listener: Callable[[Sequence[Alert]], None] | None = None,
        pipeline: Pipeline | None = None,
        wall_clock: Callable[[], int] = wall_clock_ms,
        clients: Clients | None = None,
    ) -> None:
        """``clients``: how the stages reach Kafka (default: aiokafka; in-memory doubles in
        `runtime/testing.py`)."""
        kafka = config.kafka
        self._clients = clients = clients if clients is not None else kafka_clients()
        if role == "repartition" and kafka.input_keyed_by_host:
            raise ConfigError(
                "--role repartition needs kafka.input_keyed_by_host = false: with keyed input "
                "there is no repartition stage"
            )
        self.config = config
        self.role = role
        self.registry = registry if registry is not None else CollectorRegistry()
        self.metrics = ServiceMetrics.create(self.registry)
        self.metrics_url: str | None = None
        self.repartition: RepartitionStage | None = None
        self.detect: DetectStage | None = None
        if role in ("all", "repartition") and not kafka.input_keyed_by_host:
            self.repartition = RepartitionStage(config, self.metrics, clients=clients)
        if role in ("all", "detect"):
            self.detect = DetectStage(
                config,
                self.metrics,
                pipeline=pipeline,
                alert_listener=alert_listener,
                wall_clock=wall_clock,
                clients=clients,
            )
        self.stages: list[Stage] = [s for s in (self.repartition, self.detect) if s is not None]
        self._broker_reachable = False
        self._connectivity = Connectivity(kafka.bootstrap_servers)

    # -- health ---------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return bool(self.stages) and all(stage.alive for stage in self.stages)

    @property
    def ready(self) -> bool:
        return self.readiness().ready

    def readiness(self) -> Readiness:
        reasons = [reason for stage in self.stages for reason in stage.readiness_reasons()]
        if not self._broker_reachable:
            reasons.append("broker not reachable")
        return Readiness(ready=not reasons, reasons=tuple(reasons))

    @property
    def pipeline(self) -> Pipeline:
        """The detector stage's pipeline (state, stats)."""
        if self.detect is None:
            raise AttributeError("this process runs no detector stage")
        return self.detect.pipeline

    @property
    def committed_offsets(self) -> dict[TopicPartition, int]:
        """Next offsets committed on the collectors' topics, per partition."""
        reader = self.repartition if self.repartition is not None else self.detect
        return reader.committed_offsets if reader is not None else {}

    # -- main loop ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Run every stage until ``stop`` is set, then stop them gracefully."""
        kafka = self.config.kafka
        options = client_options(kafka)
        http = HttpServer(
            self.registry,
            host=self.config.metrics.host,
            port=self.config.metrics.port,
            liveness=lambda: self.alive,
            readiness=self.readiness,
        )
        await http.start()
        self.metrics_url = http.url
        probe: asyncio.Task[None] | None = None
        try:
            log.info(
                "beaconwatch starting (role %s, stages %s): input=%s group=%s alerts=%s "
                "dead_letter=%s metrics=%s kafka=%s",
                self.role,
                [s.name for s in self.stages],
                kafka.input_topics,
                kafka.group_id,
                kafka.alerts_topic,
                kafka.dead_letter_topic,
                self.metrics_url,
                redacted(options),
            )
            if kafka.create_topics:
                topics = dict.fromkeys(
                    (kafka.alerts_topic, kafka.dead_letter_topic), kafka.output_topic_partitions
                )
                if not kafka.input_keyed_by_host:
                    topics[kafka.internal_topic] = kafka.internal_topic_partitions
                created = await self._clients.create_topics(
                    kafka, topics, service_topic_configs(kafka)
                )
                if created:
                    log.info("created topics %s", created)
            self._broker_reachable = True
            probe = asyncio.create_task(self._probe_loop(), name="beaconwatch-probe")
            await _run_together(self.stages, stop)
        finally:
            if probe is not None:
                probe.cancel()
            self.metrics.partitions_assigned.set(0)
            self.metrics.repartition_partitions_assigned.set(0)
            await http.close()
            log.info("beaconwatch stopped")

    async def _probe_loop(self) -> None:
        """One metadata round trip every few seconds: is the broker reachable right now?"""
        while True:
            await asyncio.sleep(_PROBE_INTERVAL_S)
            sources = [s.source for s in self.stages if s.source is not None]
            if sources:
                self._connectivity.observe(await sources[0].probe())
                self._broker_reachable = self._connectivity.reachable


async def _run_together(stages: Sequence[Stage], stop: asyncio.Event) -> None:
    """Run the stages until ``stop``; when one fails, stop the others and raise its error."""
    inner = asyncio.Event()

    async def relay() -> None:
        await stop.wait()
        inner.set()

    relay_task = asyncio.create_task(relay())
    tasks = [asyncio.create_task(stage.run(inner), name=f"stage-{stage.name}") for stage in stages]
    try:
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if any(t.exception() is not None for t in done if not t.cancelled()):
                inner.set()  # one failed: the others finish their batch, commit and stop
        for task in tasks:
            task.result()  # raise the first failure
    finally:
        relay_task.cancel()
        for task in tasks:
            task.cancel()
