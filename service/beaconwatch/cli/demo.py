"""``beaconwatch demo``: embedded broker + service + simulator, alerts printed live.

Everything runs in one process: Tansu (a subprocess), the service on the event loop, and the
simulator streaming accelerated event time into the input topic.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TextIO

from beaconwatch.alerting.alert import Alert
from beaconwatch.cli.report import AlertTable, format_summary, summarise
from beaconwatch.cli.simulate import add_spec_arguments, produce
from beaconwatch.config import Config, with_overrides
from beaconwatch.simulate.generator import SimulationSpec, TrafficSimulator
from beaconwatch.simulate.model import PlantedBeacon

INPUT_PARTITIONS = 3
READY_TIMEOUT_S = 180.0  # the service compiles the kernels (fresh install) before ready


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--duration", type=float, default=60.0, help="wall seconds (default 60)")
    parser.add_argument(
        "--acceleration",
        type=float,
        default=150.0,
        help="event seconds per wall second (default 150: an hour in 24 s)",
    )
    parser.add_argument("--config", help="TOML config; kafka.bootstrap_servers is replaced")
    parser.add_argument(
        "--metrics-port", type=int, default=None, help="default: [metrics] port, 0 = a free port"
    )
    add_spec_arguments(parser)


@dataclass(frozen=True, slots=True)
class DemoResult:
    alerts: list[Alert]
    planted: list[PlantedBeacon]
    records_produced: int
    metrics_url: str


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%H:%M:%S")


async def _wait_ready(service: object, task: asyncio.Task[None], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not getattr(service, "ready", False):
        if task.done():
            task.result()  # re-raises the service's start-up error
            raise RuntimeError("service stopped during start-up")
        if time.monotonic() > deadline:
            raise TimeoutError(f"service not ready after {timeout_s:.0f} s")
        await asyncio.sleep(0.1)


async def run_demo(
    config: Config,
    spec: SimulationSpec,
    *,
    duration_s: float,
    acceleration: float,
    out: TextIO,
    stop: asyncio.Event | None = None,
) -> DemoResult:
    from beaconwatch.embedded.tansu import EmbeddedBroker, create_topics
    from beaconwatch.runtime.service import BeaconService

    stop = stop if stop is not None else asyncio.Event()
    table = AlertTable(out)
    sim = TrafficSimulator(spec)
    print("starting the embedded Kafka broker (Tansu)...", file=out, flush=True)
    with EmbeddedBroker() as broker:
        config = with_overrides(config, kafka={"bootstrap_servers": broker.bootstrap_servers})
        kafka = config.kafka
        await create_topics(
            broker.bootstrap_servers,
            {
                **dict.fromkeys(kafka.input_topics, INPUT_PARTITIONS),
                kafka.alerts_topic: INPUT_PARTITIONS,
                kafka.dead_letter_topic: 1,
            },
        )
        service = BeaconService(config, alert_listener=table)
        service_task = asyncio.create_task(service.run(stop))
        try:
            await _wait_ready(service, service_task, READY_TIMEOUT_S)
            metrics_url = str(service.metrics_url)
            print(
                f"broker {broker.bootstrap_servers}; metrics {metrics_url}/metrics; streaming "
                f"{spec.hosts} hosts + {spec.beacons} planted beacons at {acceleration:g}x "
                f"for {duration_s:g} s (Ctrl-C stops)",
                file=out,
                flush=True,
            )
            wall_end = time.monotonic() + duration_s
            last_report = [time.monotonic()]
            event_end_ms = [spec.start_ms]

            def on_chunk(chunk_end_ms: int, total: int) -> None:
                event_end_ms[0] = chunk_end_ms
                if time.monotonic() - last_report[0] >= 10.0:
                    last_report[0] = time.monotonic()
                    print(
                        f"... event time {_utc(chunk_end_ms)} UTC, {total} flow records sent, "
                        f"{len(table.alerts)} alerts",
                        file=out,
                        flush=True,
                    )

            producer = asyncio.create_task(
                produce(
                    sim,
                    broker.bootstrap_servers,
                    kafka.input_topics[0],
                    acceleration=acceleration,
                    stop=stop,
                    on_chunk=on_chunk,
                )
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, wall_end - time.monotonic()))
            stop.set()
            produced = await producer
            hours = (event_end_ms[0] - spec.start_ms) / 3_600_000
            print(
                f"sent {produced} flow records ({hours:.1f} h of event time)",
                file=out,
                flush=True,
            )
        finally:
            stop.set()
            await service_task
    print(format_summary(summarise(table.alerts, sim.planted), len(table.alerts)), file=out)
    return DemoResult(table.alerts, sim.planted, produced, metrics_url)


def run_demo_command(args: argparse.Namespace, config: Config) -> int:
    from beaconwatch.runtime.signals import install_signal_handlers

    # Accelerated event time must not run past the wall clock (flows from the future are
    # rejected), so the demo starts its event time as far in the past as it will run.
    if args.start_ms is not None:
        start_ms = args.start_ms
    else:
        start_ms = int(time.time() * 1000) - round(args.duration * args.acceleration * 1000)
    spec = SimulationSpec(
        seed=args.seed, start_ms=start_ms, duration_s=None, hosts=args.hosts, beacons=args.beacons
    )
    overrides: dict[str, object] = {}
    if args.metrics_port is not None:
        overrides["port"] = args.metrics_port
    config = with_overrides(config, metrics=overrides)

    async def main() -> None:
        stop = asyncio.Event()
        restore = install_signal_handlers(asyncio.get_running_loop(), stop)
        try:
            await run_demo(
                config,
                spec,
                duration_s=args.duration,
                acceleration=args.acceleration,
                out=sys.stdout,
                stop=stop,
            )
        finally:
            restore()

    asyncio.run(main())
    return 0
