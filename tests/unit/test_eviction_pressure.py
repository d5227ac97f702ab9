"""A flood of one-off pairs cannot evict an established beacon (issue "Production-hard",
step 1). Seen: with 100k pairs a 1 h beacon went undetected for 12 h under 40 new pairs/s; with
the default 1M, 28k new pairs/s blinded it. An attacker can flood to hide."""

from __future__ import annotations

import numpy as np

from beaconwatch.config import Config, with_overrides
from beaconwatch.core.detector import Detector
from beaconwatch.domain.flows import FlowBatch
from tests.unit.flowgen import T0_MS, WALL_MS, beacon_rows, make_flows

HOUR_MS = 3_600_000
V4 = np.uint64(0xFFFF_0000_0000)


def flood(start_ms: int, end_ms: int, per_s: float, first: int) -> FlowBatch:
    """One-off pairs: each flow a new (internal source, external destination)."""
    n = int((end_ms - start_ms) / 1000 * per_s)
    i = np.arange(first, first + n, dtype=np.uint64)
    start = np.linspace(start_ms, end_ms, n, endpoint=False).astype(np.int64)
    return FlowBatch.from_columns(
        start_ms=start,
        src_hi=np.zeros(n), src_lo=V4 | np.uint64(0x0A01_0000) | (i % np.uint64(60_000)),
        dst_hi=np.zeros(n), dst_lo=V4 | np.uint64(0xC633_0000) + i,  # 198.51.0.0 onwards
        src_port=40_000 + (i % np.uint64(20_000)), dst_port=np.full(n, 443), proto=np.full(n, 6),
        bytes=np.full(n, 500),
    )  # fmt: skip


def run(
    config: Config, hours: int, per_s: float, flood_from_h: int = 0
) -> tuple[Detector, list[str]]:
    det = Detector(config, wall_clock_ms=lambda: WALL_MS)
    beacon = beacon_rows("10.0.0.7", "203.0.113.50", period_s=3600, count=hours, jitter=0.1)
    alerted: list[str] = []
    first = 0
    for h in range(hours):  # hour by hour: the beacon's check-in, then the hour's flood
        t0 = T0_MS + h * HOUR_MS
        checkins = [r for r in beacon if t0 <= r[0] < t0 + HOUR_MS]
        noise = flood(t0, t0 + HOUR_MS, per_s if h >= flood_from_h else 0.01, first)
        first += len(noise)
        merged = FlowBatch.concat([make_flows(checkins), noise]) if checkins else noise
        order = np.argsort(merged.start_ms, kind="stable")
        batch = merged.take(order)
        for lo in range(0, len(batch), 20_000):
            part = batch.take(np.arange(lo, min(lo + 20_000, len(batch))))
            alerted += [a.dst_ip for a in det.process(part).alerts]
    return det, alerted


def test_a_flood_of_one_off_pairs_cannot_evict_a_1h_beacon() -> None:
    # The beacon has checked in for 3 h when the flood starts: 20 new pairs a second, the
    # table (10k pairs) turning over seven times an hour, for 12 h. Least-recently-seen
    # eviction removed the beacon's row before every next check-in; now the one-offs go.
    config = with_overrides(Config(), state={"max_pairs": 10_000})
    det, alerted = run(config, hours=15, per_s=20, flood_from_h=3)
    assert det.stats.evicted_capacity_total > 800_000
    assert det.stats.evicted_established_total == 0
    assert "203.0.113.50" in alerted


def test_a_new_pair_still_needs_room_for_its_second_connection() -> None:
    # The price, documented: a beacon that *starts* during such a flood is a one-off among
    # one-offs until its second check-in, and a 1 h one is evicted before it comes.
    config = with_overrides(Config(), state={"max_pairs": 10_000})
    _, alerted = run(config, hours=14, per_s=20)
    assert "203.0.113.50" not in alerted
