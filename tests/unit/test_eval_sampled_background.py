"""The evaluation's packet-sampled office (evaluation/sampled_background.py): what the
exporter sends for each flow."""

from __future__ import annotations

import numpy as np
from evaluation import sampled_background as sb

from beaconwatch.domain.flows import FlowBatch


def flows(n: int, proto: int, nbytes: int) -> FlowBatch:
    t = np.arange(n, dtype=np.int64) * 1000
    return FlowBatch.from_columns(
        start_ms=t, src_hi=np.zeros(n), src_lo=np.zeros(n), dst_hi=np.zeros(n),
        dst_lo=np.zeros(n), src_port=np.full(n, 50_000), dst_port=np.full(n, 443),
        proto=np.full(n, proto), bytes=np.full(n, nbytes),
    )  # fmt: skip


def test_each_packet_is_kept_with_probability_one_in_n() -> None:
    rng = np.random.default_rng(1)
    tcp = flows(40_000, 6, 1_400)  # 10 + 1 packets: exported 1 - 0.99^11 = 10.5 % at 1:100
    records, sent = sb.sample(tcp, 100, rng)
    assert abs(sent.mean() - (1 - 0.99**11)) < 0.005
    assert len(records) == sent.sum()
    assert (records.packets >= 1).all() and (records.sampling_rate == 100).all()
    assert (records.bytes == records.packets * (1_400 // 11)).all()
    assert (records.start_ms == tcp.start_ms[sent]).all()
    udp, _ = sb.sample(flows(40_000, 17, 100), 10, rng)  # a DNS query and its answer
    assert abs(len(udp) / 40_000 - (1 - 0.9**2)) < 0.01
    assert (udp.packets <= 2).all()


def test_the_section_counts_benign_pairs_apart_from_iot_devices() -> None:
    run = sb.SampledRun(
        rate=100, flows=1_000, exported=100, host_days=500.0, benign_pairs_alerted=2,
        benign_alerts=3, periodic_pairs_alerted=1, implants_detected=4, implants_eligible=9,
        alerted=[
            sb.AlertedPair("browsing", "benign", 1, 15.0, 11),
            sb.AlertedPair("browsing", "benign", 2, 30.0, 12),
            sb.AlertedPair("iot_periodic", "benign_periodic", 1, 3600.0, 20),
        ],
    )  # fmt: skip
    assert run.benign_per_1000_host_days == 4.0
    row = sb.section([run]).splitlines()[-1]
    assert row.startswith("| 1:100 | 500 | 100 of 1,000 (10%) | 2 (3 alerts) | 4.00 |")
    assert "| browsing 2 | 1 | 4/9 |" in row
