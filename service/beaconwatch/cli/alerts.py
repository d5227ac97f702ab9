"""``beaconwatch alerts``: follow the alerts topic as a readable table (or JSON lines).

Reads every partition without a consumer group (nothing committed, any number of readers),
from the end (new alerts only) or ``--from-beginning``; ``--no-follow`` stops at the end the
topic had when the command started. Records that are no beaconwatch alert are skipped with one
line on stderr each.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from beaconwatch.cli.alerts_table import NotAnAlertError, format_row, header, parse_alert
from beaconwatch.cli.scan_output import terminal_width
from beaconwatch.config import Config, with_overrides

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer, TopicPartition

# How long to wait for the topic's partitions and their end offsets before giving up.
METADATA_TIMEOUT_S = 15.0
POLL_TIMEOUT_MS = 500


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="TOML config (its [kafka] section is used)")
    parser.add_argument(
        "--bootstrap-servers", help="Kafka brokers (default: kafka.bootstrap_servers)"
    )
    parser.add_argument("--topic", help="topic to read (default: kafka.alerts_topic)")
    parser.add_argument(
        "--from-beginning",
        action="store_true",
        help="start at the oldest alert still on the topic (default: new alerts only)",
    )
    parser.add_argument(
        "--follow",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep waiting for new alerts (default); --no-follow stops at the end the topic "
        "had at start",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print each alert document as it is on the topic, one per line (for jq)",
    )


@dataclass
class Counts:
    alerts: int = 0
    skipped: int = 0
    header_shown: bool = field(default=False, repr=False)


def run_alerts(args: argparse.Namespace, config: Config) -> int:
    from beaconwatch.cli.run import broker_problem

    if args.bootstrap_servers:
        config = with_overrides(config, kafka={"bootstrap_servers": args.bootstrap_servers})
    problem = asyncio.run(broker_problem(config))
    if problem is not None:
        print(f"beaconwatch: {problem}", file=sys.stderr)
        return 1
    topic = args.topic or config.kafka.alerts_topic
    try:
        counts = asyncio.run(
            read_alerts(config, topic, args.from_beginning, args.follow, args.json, sys.stdout)
        )
    except TopicMissingError as exc:
        print(f"beaconwatch: {exc}", file=sys.stderr)
        return 1
    print(
        f"beaconwatch: {counts.alerts} alerts, {counts.skipped} other records skipped",
        file=sys.stderr,
    )
    return 0


class TopicMissingError(RuntimeError):
    pass


async def read_alerts(
    config: Config, topic: str, from_beginning: bool, follow: bool, as_json: bool, out: TextIO
) -> Counts:
    from aiokafka import AIOKafkaConsumer

    from beaconwatch.runtime.kafka_options import client_options

    consumer = AIOKafkaConsumer(**client_options(config.kafka), enable_auto_commit=False)
    await consumer.start()
    try:
        tps = await _assign(consumer, config, topic)
        ends = await _end_offsets(consumer, tps)
        for tp in tps:
            if from_beginning:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, ends[tp])
        start = "the beginning" if from_beginning else "the end"
        following = ", following (Ctrl-C stops)" if follow else ""
        print(f"beaconwatch: reading {topic} ({len(tps)} partitions) from {start}{following}",
              file=sys.stderr, flush=True)  # fmt: skip
        counts = Counts()
        while follow or not await _caught_up(consumer, ends):
            batch = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS)
            for records in batch.values():
                for record in records:
                    show(record.value, record.partition, record.offset, as_json, out, counts)
        return counts
    finally:
        await consumer.stop()


def show(
    value: bytes | None, partition: int, offset: int, as_json: bool, out: TextIO, counts: Counts
) -> None:
    try:
        row = parse_alert(value)
    except NotAnAlertError as exc:
        counts.skipped += 1
        print(f"beaconwatch: skipped partition {partition} offset {offset}: {exc}",
              file=sys.stderr, flush=True)  # fmt: skip
        return
    counts.alerts += 1
    if as_json:
        assert value is not None
        out.write(value.decode("utf-8", "replace") + "\n")
        out.flush()
        return
    width = terminal_width(out)
    if not counts.header_shown:
        print(header(width), file=out)
        counts.header_shown = True
    print(format_row(row, width), file=out, flush=True)


async def _assign(consumer: AIOKafkaConsumer, config: Config, topic: str) -> list[TopicPartition]:
    """All partitions of ``topic``, from the admin API (a group-less consumer's metadata does
    not cover topics it did not subscribe to)."""
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    from beaconwatch.runtime.kafka_options import client_options

    admin = AIOKafkaAdminClient(**client_options(config.kafka))
    await admin.start()
    try:
        # Listed first: describing a missing topic creates it on brokers that auto-create.
        if topic not in await admin.list_topics():
            raise TopicMissingError(f"topic {topic} does not exist (kafka.alerts_topic, --topic)")
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if not described or described[0]["error_code"] != 0 or not described[0]["partitions"]:
        raise TopicMissingError(f"topic {topic} does not exist (kafka.alerts_topic, --topic)")
    tps = [TopicPartition(topic, p["partition"]) for p in described[0]["partitions"]]
    consumer.assign(tps)
    return sorted(tps, key=lambda tp: tp.partition)


async def _end_offsets(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """Each partition's end (high watermark), read from fetch responses: Tansu answers
    ListOffsets(latest) with the last batch's base offset + 1, not the end of the log."""
    await consumer.seek_to_beginning(*tps)
    deadline = asyncio.get_running_loop().time() + METADATA_TIMEOUT_S
    while any(consumer.highwater(tp) is None for tp in tps):
        if asyncio.get_running_loop().time() > deadline:
            raise TopicMissingError(
                f"no end offsets for {tps[0].topic} after {METADATA_TIMEOUT_S} s"
            )
        await consumer.getmany(*tps, timeout_ms=100, max_records=1)
    return {tp: int(consumer.highwater(tp) or 0) for tp in tps}


async def _caught_up(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for tp, end in ends.items():
        if await consumer.position(tp) < end:
            return False
    return True
