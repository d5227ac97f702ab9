"""CPU cost of one dead letter in the service's sink, against the embedded broker.

Produces N rejected records to a dead-letter topic the old way (one `producer.send` per record,
with the sink's headers) and the batched way (`DeadLetterSink.send_rejections`), awaiting every
acknowledgement as the service does before it commits, and prints the CPU time of this process
per dead letter (the broker runs in its own process). Records are ~300-byte values with a key
and one original header, as the storm's.

    .venv/bin/python bench/dead_letter.py [--records 20000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import uuid

from aiokafka import AIOKafkaProducer, ConsumerRecord

from beaconwatch.domain.rejections import Rejection, RejectReason
from beaconwatch.embedded.tansu import EmbeddedBroker, create_topics
from beaconwatch.sinks.dead_letter import DeadLetterSink, dead_letter_headers, source_headers

CHUNK = 10_000  # records per consumed batch, the service's default kafka.max_batch_records


def consumed(count: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(
            topic="flows",
            partition=3,
            offset=1_000_000 + k,
            timestamp=0,
            timestamp_type=0,
            key=b"exporter-%d" % (k % 7),
            value=b"\xff" * 300,
            checksum=None,
            serialized_key_size=12,
            serialized_value_size=300,
            headers=(("src", b"a"),),
        )
        for k in range(count)
    ]


async def per_dead_letter_us(servers: str, count: int, batched: bool) -> float:
    topic = f"dlq-bench-{uuid.uuid4().hex[:8]}"
    await create_topics(servers, {topic: 3})
    producer = AIOKafkaProducer(bootstrap_servers=servers, acks="all", enable_idempotence=False)
    await producer.start()
    try:
        sink = DeadLetterSink(producer, topic)
        msgs = consumed(count)
        rejections = [
            Rejection(k, RejectReason.INVALID_JSON, f"bad record {k}") for k in range(count)
        ]
        await producer.send_and_wait(topic, b"warm-up", partition=0)
        gc.collect()
        start = time.process_time()
        for lo in range(0, count, CHUNK):
            chunk = msgs[lo : lo + CHUNK]
            rejected = [
                Rejection(r.record_index - lo, r.reason, r.detail)
                for r in rejections[lo : lo + CHUNK]
            ]
            if batched:
                futures = await sink.send_rejections(chunk, rejected)
            else:
                futures = []
                for r in rejected:
                    msg = chunk[r.record_index]
                    headers = dead_letter_headers(
                        msg, source_headers(msg), r.reason.encode(), r.detail
                    )
                    futures.append(await producer.send(
                        topic, value=msg.value, key=msg.key, headers=headers
                    ))  # fmt: skip
            await asyncio.gather(*futures)
        return (time.process_time() - start) / count * 1e6
    finally:
        await producer.stop()


async def main_async(records: int, repeats: int) -> None:
    with EmbeddedBroker() as broker:
        servers = broker.bootstrap_servers
        for batched in (False, True):
            best = min(
                [await per_dead_letter_us(servers, records, batched) for _ in range(repeats)]
            )
            name = "send_rejections (batched)" if batched else "send per record"
            print(f"{name}: {best:.1f} us CPU per dead letter (best of {repeats}, {records:,})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main_async(args.records, args.repeats))


if __name__ == "__main__":
    main()
