"""The Kafka service end to end against a real (embedded) broker: detection, dead letters,
offsets, HTTP endpoints, restart, and graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from typing import TYPE_CHECKING

import orjson
import pytest
from aiokafka import TopicPartition

from beaconwatch.runtime.signals import install_signal_handlers

if TYPE_CHECKING:
    from tests.integration.conftest import KafkaTestKit

pytestmark = pytest.mark.integration

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z, event time of the first generated flow
BEACONS = [  # (source, destination, port): planted C2 implants
    ("10.0.0.11", "203.0.113.50", 443),
    ("10.0.0.12", "198.51.100.7", 8443),
    ("10.0.0.13", "192.0.2.99", 80),
]
Record = tuple[bytes | None, bytes | None]


def flow_json(start_ms: int, src: str, dst: str, dport: int, nbytes: int, sport: int) -> bytes:
    """One goflow2 v2 JSON record (the fields the decoder needs, as goflow2 spells them)."""
    return orjson.dumps(
        {
            "type": "IPFIX",
            "time_flow_start_ns": start_ms * 1_000_000,
            "time_flow_end_ns": (start_ms + 800) * 1_000_000,
            "sampling_rate": 0,
            "sampler_address": "192.168.0.1",
            "src_addr": src,
            "dst_addr": dst,
            "src_port": sport,
            "dst_port": dport,
            "proto": "TCP",
            "bytes": nbytes,
            "packets": max(1, nbytes // 500),
            "etype": "IPv4",
        }
    )


def generate_flows(seed: int, *, start_ms: int = T0_MS, duration_s: float = 2_400) -> list[Record]:
    """3 beacons (60 s +/- 10 % jitter, ~40 check-ins) and Poisson noise from 50 hosts to many
    destinations, in event-time order, keyed by pair (so a pair stays in one partition)."""
    rng = random.Random(seed)
    events: list[tuple[int, str, str, int, int]] = []
    for src, dst, port in BEACONS:
        t = start_ms + rng.uniform(0, 30_000)
        while t < start_ms + duration_s * 1000:
            events.append((int(t), src, dst, port, 900 + rng.randint(-20, 20)))
            t += 60_000 * rng.uniform(0.9, 1.1)
    hosts = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(50)]
    destinations = [f"100.64.{i // 200}.{i % 200 + 1}" for i in range(400)]
    t = float(start_ms)
    while True:
        t += rng.expovariate(1 / 4_000)  # one benign flow every ~4 s: ~600 flows
        if t >= start_ms + duration_s * 1000:
            break
        dst = rng.choice(destinations)
        events.append(
            (int(t), rng.choice(hosts), dst, rng.choice((443, 80, 53)), rng.randint(200, 90_000))
        )
    events.sort()
    records: list[Record] = []
    for t_ms, src, dst, port, nbytes in events:
        key = f"{src}>{dst}:{port}/6".encode()
        records.append((key, flow_json(t_ms, src, dst, port, nbytes, rng.randint(32768, 60999))))
    return records


async def test_detects_beacons_dead_letters_bad_records_and_commits(kit: KafkaTestKit) -> None:
    names = kit.names
    # One input partition: the flows are produced in event-time order and read back that way.
    await kit.make_input_topic(1)
    flows = generate_flows(seed=1)
    bad: list[Record] = [(b"k-bad", b'{"time_flow_start_ns": 1, "src_addr": '), (b"k-tomb", None)]
    records = flows[:300] + bad + flows[300:]
    await kit.produce(names.input, records)

    config = kit.config()
    async with kit.running(config, wait_ready=False) as run:
        await kit.wait_until(lambda: run.service.metrics_url is not None, what="HTTP up")
        assert run.service.metrics_url is not None
        # Not ready until both stages run and hold partitions. Tansu answers the group join
        # after seconds; Apache Kafka, with the kernels already compiled, can be done before
        # the first request (it was, once in five CI runs): then ready it must be.
        status, body = await http_get(run.service.metrics_url, "/readyz")
        if status == 200:
            assert run.service.ready
        else:
            assert status == 503
            # Each stage says why: still warming up its kernels, or waiting for partitions.
            reasons = set(orjson.loads(body)["reasons"])
            repartition = {
                "repartition stage not running",
                f"no partitions of {names.input} assigned",
            }
            detector = {
                "detector stage not running",
                f"no partitions of {config.kafka.internal_topic} assigned",
            }
            assert repartition & reasons or detector & reasons, reasons
        await kit.wait_until(lambda: run.service.ready, what="ready")
        await kit.wait_until(lambda: run.consumed() == len(records), what="all records consumed")
        await kit.drained(run)
        registry = run.service.registry
        url = run.service.metrics_url
        assert url is not None

        # HTTP endpoints while running.
        status, body = await http_get(url, "/metrics")
        assert status == 200
        text = body.decode()
        assert f"beaconwatch_flows_consumed_total {float(len(records))}" in text
        assert 'beaconwatch_records_rejected_total{reason="tombstone"} 1.0' in text
        assert "beaconwatch_dead_letter_records_total 2.0" in text
        assert (await http_get(url, "/healthz"))[0] == 200
        status, body = await http_get(url, "/readyz")
        assert status == 200, body
        await kit.wait_until(
            lambda: (
                run.service.committed_offsets.get(TopicPartition(names.input, 0)) == len(records)
            ),
            what="batch committed",
        )
        assert kit.metric(registry, "beaconwatch_repartition_partitions_assigned") == 1
        assert kit.metric(registry, "beaconwatch_partitions_assigned") == 4  # internal topic
        assert kit.metric(registry, "beaconwatch_consumer_lag_records") == 0

    # Stopped: the task returned cleanly and the HTTP server is closed.
    assert run.task.done() and run.task.exception() is None
    with pytest.raises(OSError):
        await http_get(url, "/healthz")

    # Alerts: exactly the planted pairs, as ECS JSON keyed by pair.
    planted = set(BEACONS)
    alert_records = await kit.read_topic(names.alerts, expected=len(planted))
    docs = [orjson.loads(r.value) for r in alert_records]
    alerted = {(d["source"]["ip"], d["destination"]["ip"], d["destination"]["port"]) for d in docs}
    assert alerted == planted
    for rec, doc in zip(alert_records, docs, strict=True):
        src, dst, port = doc["source"]["ip"], doc["destination"]["ip"], doc["destination"]["port"]
        assert rec.key == f"{src}>{dst}:{port}/6".encode()
    assert {(a.src_ip, a.dst_ip, a.dst_port) for a in run.alerts} == planted
    assert len(run.alerts) == len(alert_records)  # listener saw what was produced

    # Metrics agree with the records.
    assert kit.metric(registry, "beaconwatch_flows_accepted_total") == len(flows)
    assert kit.metric(registry, "beaconwatch_records_rejected_total", reason="tombstone") == 1
    rejected = sum(
        kit.metric(registry, "beaconwatch_records_rejected_total", reason=r)
        for r in ("invalid_json", "missing_field", "invalid_field")
    )
    assert rejected == 1
    assert kit.metric(registry, "beaconwatch_dead_letter_records_total") == 2
    assert sum(
        kit.metric(registry, "beaconwatch_alerts_total", severity=s)
        for s in ("low", "medium", "high", "critical")
    ) == len(docs)

    # Dead letters: original key/value plus Kafka-Connect-style headers.
    dead = await kit.read_topic(names.dead_letter, expected=2)
    assert [(r.key, r.value) for r in dead] == bad
    for rec, offset in zip(dead, (300, 301), strict=True):
        headers = dict(rec.headers)
        assert headers["__connect.errors.topic"] == names.input.encode()
        assert headers["__connect.errors.partition"] == b"0"
        assert headers["__connect.errors.offset"] == str(offset).encode()
        assert headers["__connect.errors.exception.class.name"]
        assert headers["__connect.errors.exception.message"]
    assert dict(dead[1].headers)["reason"] == b"tombstone"
    assert dict(dead[0].headers)["reason"] in (b"invalid_json", b"missing_field")

    # Everything consumed is committed.
    assert await kit.committed_offsets() == await kit.end_offsets(names.input)


async def http_get(base_url: str, path: str) -> tuple[int, bytes]:
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), body


async def test_restart_resumes_from_committed_offsets(kit: KafkaTestKit) -> None:
    names = kit.names
    await kit.make_input_topic(3)
    first = generate_flows(seed=2, duration_s=600)
    await kit.produce(names.input, first)
    config = kit.config()
    async with kit.running(config) as run:
        await kit.wait_until(lambda: run.consumed() == len(first), what="first run consumed")
    assert await kit.committed_offsets() == await kit.end_offsets(names.input)

    second = generate_flows(seed=3, start_ms=T0_MS + 600_000, duration_s=300)
    await kit.produce(names.input, second)
    async with kit.running(config) as run:
        await kit.wait_until(lambda: run.consumed() >= len(second), what="second run consumed")
        await asyncio.sleep(0.5)  # a few more polls: nothing old may arrive
        assert run.consumed() == len(second)
    assert await kit.committed_offsets() == await kit.end_offsets(names.input)


async def test_sigterm_finishes_the_batch_and_commits(kit: KafkaTestKit) -> None:
    names = kit.names
    await kit.make_input_topic(2)
    records = generate_flows(seed=4, duration_s=7_200)
    await kit.produce(names.input, records)
    # The detector reads the input itself, so every record it handled is committed. With a
    # repartition stage, records whose flows wait for event-time alignment are committed
    # only once written (test_alignment_on_broker.py).
    config = kit.config(max_batch_records=50, input_keyed_by_host=True)
    async with kit.running(config) as run:
        remove = install_signal_handlers(asyncio.get_running_loop(), run.stop)
        try:
            await kit.wait_until(lambda: run.consumed() > 0, what="first batch")
            os.kill(os.getpid(), signal.SIGTERM)  # the real signal, handled by the loop
            await asyncio.wait_for(run.task, 30)
        finally:
            remove()
        assert run.stop.is_set()
        consumed = int(run.consumed())
    committed = await kit.committed_offsets()
    # Every record handed to the pipeline is committed, none beyond.
    assert sum(committed.values()) == consumed
    assert consumed == sum(run.service.committed_offsets.values())
    assert 0 < consumed <= len(records)
