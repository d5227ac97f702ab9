"""``beaconwatch simulate``: synthetic goflow2 JSON to a file, stdout or a Kafka topic."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import sys
import time
from collections.abc import Callable
from typing import BinaryIO, TextIO

from beaconwatch.scoring.shape_names import shape_name
from beaconwatch.simulate.generator import SimulationSpec, TrafficSimulator
from beaconwatch.simulate.model import write_truth
from beaconwatch.simulate.pacing import EventPacer

MAX_UNACKED = 20_000  # records sent but not yet acknowledged before the producer waits


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hosts", type=int, default=300, help="benign hosts (default 300)")
    parser.add_argument("--beacons", type=int, default=4, help="planted beacons (default 4)")
    parser.add_argument(
        "--start-ms",
        type=int,
        default=None,
        help="event time of the first flow (default: now minus the duration)",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--output", metavar="FILE", help="JSON lines file (.gz compresses); - = stdout"
    )
    target.add_argument("--topic", help="Kafka topic to produce to (records keyed by pair)")
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument(
        "--duration-s", type=float, default=3_600.0, help="event time to simulate (default 3600)"
    )
    parser.add_argument("--truth", metavar="FILE", help="write the planted beacons as JSON here")
    parser.add_argument(
        "--acceleration",
        type=float,
        default=0.0,
        help="with --topic: event seconds per wall second (default 0 = as fast as possible)",
    )
    add_spec_arguments(parser)


def spec_from_args(args: argparse.Namespace, duration_s: float | None) -> SimulationSpec:
    # By default the simulated traffic ends now: event time in the future would be rejected by
    # the detector (state.max_future_s) as a garbage timestamp.
    if args.start_ms is not None:
        start_ms = args.start_ms
    else:
        start_ms = int(time.time() * 1000) - round((duration_s or 0) * 1000)
    return SimulationSpec(
        seed=args.seed,
        start_ms=start_ms,
        duration_s=duration_s,
        hosts=args.hosts,
        beacons=args.beacons,
    )


def write_file(sim: TrafficSimulator, output: str, stdout: BinaryIO | None = None) -> int:
    stream: BinaryIO
    if output == "-":
        stream = stdout if stdout is not None else sys.stdout.buffer
    elif output.endswith(".gz"):
        stream = gzip.open(output, "wb", compresslevel=5)  # type: ignore[assignment]  # noqa: SIM115
    else:
        stream = open(output, "wb")  # noqa: SIM115 - closed below
    n = 0
    try:
        for _, chunk in sim.record_chunks():
            stream.write(b"".join(r.value + b"\n" for r in chunk))
            n += len(chunk)
    finally:
        if output != "-":
            stream.close()
        else:
            stream.flush()
    return n


async def produce(
    sim: TrafficSimulator,
    bootstrap_servers: str,
    topic: str,
    *,
    acceleration: float = 0.0,
    stop: asyncio.Event | None = None,
    on_chunk: Callable[[int, int], None] | None = None,
    client_options: dict[str, object] | None = None,
) -> int:
    """Produce the simulator's records (keyed by pair), paced in event time; return the count.

    Stops at the end of the simulation or when ``stop`` is set. ``on_chunk(chunk_end_ms,
    total)`` is called after each chunk was handed to the producer.
    """
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=False,  # not supported by every broker (e.g. Tansu)
        linger_ms=5,
        max_batch_size=256 * 1024,
        **(client_options or {}),
    )
    await producer.start()
    total = 0
    loop = asyncio.get_running_loop()
    pacer = EventPacer(sim.spec.start_ms, loop.time(), acceleration)
    # Acks are awaited in bulk, not per chunk: a round trip per chunk would cap the rate.
    pending: list[asyncio.Future[object]] = []
    try:
        for chunk_end_ms, chunk in sim.record_chunks():
            if stop is not None and stop.is_set():
                break
            for r in chunk:
                pending.append(await producer.send(topic, value=r.value, key=r.key))
            if len(pending) >= MAX_UNACKED:
                await asyncio.gather(*pending)
                pending.clear()
            total += len(chunk)
            if on_chunk is not None:
                on_chunk(chunk_end_ms, total)
            # Flows of a chunk go out together; wait until the chunk's end is due in wall time.
            delay_s = pacer.delay_s(chunk_end_ms, loop.time())
            if delay_s > 0:
                if stop is None:
                    await asyncio.sleep(delay_s)
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay_s)
        await asyncio.gather(*pending)
    finally:
        await producer.stop()  # flushes what is still buffered
    return total


def run_simulate(args: argparse.Namespace, *, stderr: TextIO | None = None) -> int:
    err = stderr if stderr is not None else sys.stderr
    sim = TrafficSimulator(spec_from_args(args, args.duration_s))
    if args.truth:
        write_truth(args.truth, sim.planted)
    if args.output is not None:
        n = write_file(sim, args.output)
        print(f"wrote {n} records to {args.output}", file=err)
    else:
        n = asyncio.run(
            produce(sim, args.bootstrap_servers, args.topic, acceleration=args.acceleration)
        )
        print(f"produced {n} records to topic {args.topic}", file=err)
    for b in sim.planted:
        print(
            f"planted: {b.src_ip} -> {b.dst_ip}:{b.dst_port}/{b.proto} sleep {b.period_s:.0f}s "
            f"jitter {b.jitter:.0%} {shape_name(b.style)}",
            file=err,
        )
    return 0
