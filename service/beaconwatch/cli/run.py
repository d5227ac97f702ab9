"""``beaconwatch run``: the Kafka service until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import logging
import sys
from typing import TYPE_CHECKING

from beaconwatch.config import Config
from beaconwatch.runtime.log_setup import setup_logging

if TYPE_CHECKING:
    from beaconwatch.runtime.service import Role

log = logging.getLogger("beaconwatch")
# deploy/splunk's beaconwatch:log sourcetype reads the time at the start of the line.


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", help="TOML config file (default: built-in defaults + BEACONWATCH_* env)"
    )
    parser.add_argument(
        "--role",
        choices=("all", "repartition", "detect"),
        default="all",
        help="which stages this process runs: the repartition stage (collectors' topics -> "
        "internal topic keyed by host), the detector stage (internal topic -> alerts), or "
        "both (default). See docs/operations.md.",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default="auto",
        help="worker processes in the consumer group, behind one metrics endpoint: a number, "
        "or 'auto' for one per core (default). 1 runs in this process.",
    )


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of workers: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("--workers must be at least 1")
    return value


async def serve(config: Config, role: Role = "all") -> None:
    from beaconwatch.runtime.service import BeaconService
    from beaconwatch.runtime.shutdown import stop_within
    from beaconwatch.runtime.signals import install_signal_handlers

    stop = asyncio.Event()
    restore = install_signal_handlers(asyncio.get_running_loop(), stop)
    try:
        run = asyncio.create_task(BeaconService(config, role=role).run(stop))
        await stop_within(run, stop, config.kafka.shutdown_timeout_s)
    finally:
        restore()


def run_service(args: argparse.Namespace, config: Config) -> int:
    from beaconwatch.runtime.workers import default_workers

    # A crash in native code (numba, aiokafka's C records, numpy) prints every thread's
    # Python stack to stderr before the process dies, so the logs say where it happened.
    with contextlib.suppress(ValueError):  # a stderr with no file descriptor (captured)
        faulthandler.enable()
    setup_logging(config.logging.level)
    unreachable = asyncio.run(broker_problem(config))
    if unreachable is not None:  # one line, no traceback: the operator's first hour
        print(f"beaconwatch: {unreachable}", file=sys.stderr)
        return 1
    workers = default_workers() if args.workers == "auto" else int(args.workers)
    if workers == 1:
        asyncio.run(serve(config, args.role))
    else:
        asyncio.run(supervise(config, args.role, workers))
    return 0


async def broker_problem(config: Config) -> str | None:
    """Why the brokers of ``kafka.bootstrap_servers`` cannot be reached, or None: checked
    once before any stage or worker starts, so a wrong address, a broker that is down, an
    untrusted certificate or a refused login is one line, not a traceback per worker."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.errors import KafkaConnectionError, KafkaError

    from beaconwatch.runtime.connect_errors import connection_problem
    from beaconwatch.runtime.kafka_options import client_options

    kafka = config.kafka
    client_log = logging.getLogger("aiokafka")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)  # its own error per attempt would repeat ours
    admin = AIOKafkaAdminClient(**client_options(kafka), request_timeout_ms=15_000)
    try:
        await admin.start()
    except (KafkaError, OSError) as exc:
        if isinstance(exc, KafkaConnectionError | OSError):
            # aiokafka only logged each broker's reason: dial once more to learn it.
            reason = await connection_problem(kafka) or "no broker answered"
        else:
            reason = str(exc).removeprefix(f"{type(exc).__name__}: ")
        return (
            f"cannot reach Kafka at {kafka.bootstrap_servers} (kafka.bootstrap_servers, "
            f"{kafka.security_protocol}): {reason}"
        )
    finally:
        await admin.close()
        client_log.setLevel(level)
    return None


async def supervise(config: Config, role: Role, workers: int) -> None:
    from beaconwatch.runtime.signals import install_signal_handlers
    from beaconwatch.runtime.workers import WorkerPool

    if role == "repartition" and config.kafka.input_keyed_by_host:
        from beaconwatch.config import ConfigError

        raise ConfigError(
            "--role repartition needs kafka.input_keyed_by_host = false: with keyed input "
            "there is no repartition stage"
        )
    stop = asyncio.Event()
    restore = install_signal_handlers(asyncio.get_running_loop(), stop)
    try:
        await WorkerPool(config, role=role, workers=workers).run(stop)
    finally:
        restore()
