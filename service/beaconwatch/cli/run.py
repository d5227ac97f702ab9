"""``beaconwatch run``: the Kafka service until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import TYPE_CHECKING

from beaconwatch.config import Config

if TYPE_CHECKING:
    from beaconwatch.runtime.service import Role

log = logging.getLogger("beaconwatch")


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


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiokafka logs every coordinator hiccup at INFO; keep our own messages readable.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, getattr(logging, level)))


async def serve(config: Config, role: Role = "all") -> None:
    from beaconwatch.runtime.service import BeaconService
    from beaconwatch.runtime.signals import install_signal_handlers

    stop = asyncio.Event()
    restore = install_signal_handlers(asyncio.get_running_loop(), stop)
    try:
        await BeaconService(config, role=role).run(stop)
    finally:
        restore()


def run_service(args: argparse.Namespace, config: Config) -> int:
    setup_logging(config.logging.level)
    asyncio.run(serve(config, args.role))
    return 0
