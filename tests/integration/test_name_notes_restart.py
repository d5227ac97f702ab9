"""Zeek name notes through a crash on the embedded broker: ssl records read before the service
died name their pairs' conn records read after it restarted from its checkpoint."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import numpy as np
import pytest
from prometheus_client import CollectorRegistry

from beaconwatch.alerting.alert import CHANNEL_NAME, Alert
from beaconwatch.runtime.service import BeaconService
from beaconwatch.simulate.encoders import encoder
from beaconwatch.simulate.model import SimFlow
from tests.integration.test_names_on_broker import ssl_record

if TYPE_CHECKING:
    from tests.integration.conftest import KafkaTestKit

pytestmark = pytest.mark.integration

C2, SRC = "notes-c2.example.org", "10.3.0.5"


def rotating_beacon(start_ms: int, count: int = 60) -> list[SimFlow]:
    """Check-ins every 60 s +/- 10 % to one of six CDN edges in six /24s, in random order: no
    pair and no /24 repeats regularly, only the name ties them together."""
    rng = np.random.default_rng(7)
    edges = [f"23.{10 * k}.{k + 1}.9" for k in range(6)]
    t, rows = float(start_ms), []
    for n in range(count):
        t += 60_000 * rng.uniform(0.9, 1.1)
        edge = edges[n] if n < len(edges) else edges[int(rng.integers(len(edges)))]
        rows.append(SimFlow(int(t), int(t) + 900, SRC, edge, 40_000 + n, 443, "TCP", 1_200, 8))
    return rows


async def test_ssl_records_before_a_crash_name_conn_records_after_it(kit: KafkaTestKit) -> None:
    names = kit.names
    await kit.make_input_topic(2)
    # Keyed by source: ssl and conn records of a pair share a partition without repartition.
    state = {"state_topic": f"{names.input}-state", "state_topic_partitions": 2,
             "input_keyed_by_host": True, "input_format": "zeek-json"}  # fmt: skip
    flows = rotating_beacon(int(time.time() * 1000) - 3 * 3_600_000)
    conns = encoder("zeek-json")(flows)
    key = SRC.encode()
    # Before the crash: the first six connections (one per edge) with their ssl records: too
    # few check-ins to alert. After it: the conn records only (the ssl.log shipper is behind,
    # or those connections resumed TLS sessions without a new SNI).
    first = [(key, r) for f, c in zip(flows[:6], conns[:6], strict=True)
             for r in (ssl_record(f, C2), c)]  # fmt: skip
    later = [(key, c) for c in conns[6:]]

    await kit.produce(names.input, first)
    config = kit.config(**state, checkpoint_interval_s=0.2)
    alerts: list[Alert] = []
    service = BeaconService(config, registry=CollectorRegistry(), alert_listener=alerts.extend)
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    await kit.wait_until(lambda: service.ready, timeout_s=120, what="first run ready")
    ends = await kit.end_offsets(names.input)
    await kit.wait_until(
        lambda: all(
            {tp.partition: o for tp, o in service.committed_offsets.items()}.get(p) == o
            for p, o in ends.items()
            if o  # one key: the other partition stays empty
        ),
        timeout_s=30, what="first part committed",
    )  # fmt: skip
    await asyncio.sleep(1.0)  # periodic checkpoints after the last batch
    assert kit.metric(service.registry, "beaconwatch_checkpoints_total", result="written") >= 1
    task.cancel()  # a crash: no shutdown checkpoint, only the periodic one
    with pytest.raises(asyncio.CancelledError):
        await task
    assert alerts == []

    await kit.produce(names.input, later)
    async with kit.running(kit.config(**state)) as run:
        await kit.wait_until(lambda: run.consumed() >= len(later), timeout_s=60,
                             what="later part consumed")  # fmt: skip
        await kit.drained(run)
        assert kit.metric(run.service.registry, "beaconwatch_checkpoint_restores_total",
                          result="restored") >= 1  # fmt: skip
    new = [(a.src_ip, a.channel, a.dst_domain) for a in run.alerts if a.lifecycle == "new"]
    assert new == [(SRC, CHANNEL_NAME, C2)]
