"""``beaconwatch run``: the Kafka service until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging

from beaconwatch.config import Config

log = logging.getLogger("beaconwatch")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", help="TOML config file (default: built-in defaults + BEACONWATCH_* env)"
    )


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aiokafka logs every coordinator hiccup at INFO; keep our own messages readable.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, getattr(logging, level)))


async def serve(config: Config) -> None:
    from beaconwatch.runtime.service import BeaconService
    from beaconwatch.runtime.signals import install_signal_handlers

    stop = asyncio.Event()
    restore = install_signal_handlers(asyncio.get_running_loop(), stop)
    try:
        await BeaconService(config).run(stop)
    finally:
        restore()


def run_service(args: argparse.Namespace, config: Config) -> int:
    setup_logging(config.logging.level)
    asyncio.run(serve(config))
    return 0
