"""Capture real collector output as decoder fixtures (tests/fixtures/softflowd/):

    python -m tests.e2e.capture_fixtures [--out DIR] [--records N]

Runs the seed-1 pcap (default start) through every path of the end-to-end tests
(`collectors.PATHS`) into a fresh Apache Kafka broker and keeps the first N record values of
each topic: ``<collector>-<v9|ipfix>.bin`` (goflow2 protobuf, back to back) or ``.jsonl``.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.e2e.collectors import PATHS, FlowPath, publish_path
from tests.e2e.pcap_traffic import write_pcap
from tests.harness.apache_kafka import ApacheKafkaBroker

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "softflowd"


def fixture_name(path: FlowPath) -> str:
    collector = "pmacct" if path.collector == "nfacctd" else "goflow2"
    version = "v9" if path.netflow_version == 9 else "ipfix"
    return f"{collector}-{version}.{'bin' if path.input_format == 'goflow2-pb' else 'jsonl'}"


async def first_values(bootstrap: str, topic: str, count: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        values: list[bytes] = []
        while len(values) < count:
            for records in (await consumer.getmany(tp, timeout_ms=1000)).values():
                values.extend(r.value for r in records if r.value is not None)
        return values[:count]
    finally:
        await consumer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=FIXTURES)
    parser.add_argument("--records", type=int, default=40)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bw-capture-") as tmp, ApacheKafkaBroker() as broker:
        work = Path(tmp)
        write_pcap(work / "traffic.pcap", seed=1)
        for path in PATHS:
            topic = f"capture-{path.name}"
            exported, published = publish_path(path, work / "traffic.pcap", broker, topic, work)
            values = asyncio.run(first_values(broker.bootstrap_servers, topic, args.records))
            name = fixture_name(path)
            data = b"".join(values) if name.endswith(".bin") else b"\n".join(values) + b"\n"
            (args.out / name).write_bytes(data)
            print(f"{path.name}: {exported} exported, {published} published -> {name}")


if __name__ == "__main__":
    main()
