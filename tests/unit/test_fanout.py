"""P2P fan-out (issue "Real traffic", step 4): one host keeping dozens of peers alive on one
rhythm is one fan-out, down-ranked, not dozens of beacon alerts."""

from __future__ import annotations

import numpy as np

from beaconwatch.alerting.alert import Alert
from beaconwatch.config import Config, with_overrides
from beaconwatch.core.detector import Detector
from tests.unit.flowgen import T0_MS, WALL_MS, Row, beacon_rows, make_flows

TORRENT = "10.0.0.50"


def peers(n: int, seed: int = 0) -> list[Row]:
    """A BitTorrent client reconnecting to ``n`` peers on 6881-6889 every 120 s (+/- 5 %)."""
    rng = np.random.default_rng(seed)
    rows: list[Row] = []
    for p in range(n):
        rows += beacon_rows(TORRENT, f"198.51.{100 + p // 200}.{p % 200 + 1}", period_s=120,
                            count=60, jitter=0.05, port=6881 + p % 9,
                            start_ms=T0_MS + int(rng.integers(0, 120_000)), seed=p)  # fmt: skip
    return rows


def run(rows: list[Row], config: Config | None = None) -> list[Alert]:
    det = Detector(config or Config(), wall_clock_ms=lambda: WALL_MS)
    rows = sorted(rows)
    alerts: list[Alert] = []
    for i in range(0, len(rows), 500):
        alerts += det.process(make_flows(rows[i : i + 500])).alerts
    return alerts


def test_a_torrent_clients_peers_are_not_dozens_of_beacons() -> None:
    # Per peer, as before prefix channels (which fold peers of one /24 and port into one).
    off = with_overrides(
        Config(),
        prevalence={"fanout_low_destinations": 1000, "fanout_high_destinations": 1001},
        state={"prefix_channels": False},
    )
    before = {a.dst_ip for a in run(peers(30), off) if a.src_ip == TORRENT}
    assert len(before) >= 20  # what it was: one alert per peer
    assert [a for a in run(peers(30)) if a.src_ip == TORRENT] == []


def test_beacons_beside_a_fan_out_are_still_alerted() -> None:
    c2_same_block = beacon_rows("10.0.0.51", "203.0.113.9", period_s=60, count=40, port=6885)
    c2_on_443 = beacon_rows(TORRENT, "203.0.113.10", period_s=90, count=40, jitter=0.1)
    alerts = run(peers(30) + c2_same_block + c2_on_443)
    alerted = {(a.src_ip, a.dst_ip) for a in alerts}
    assert ("10.0.0.51", "203.0.113.9") in alerted  # another host: its own fan-out is 1
    assert (TORRENT, "203.0.113.10") in alerted  # port 443: browsing-style fan-out not counted
    assert not {d for s, d in alerted if s == TORRENT and d.startswith("198.51.")}


def test_a_few_peers_are_not_a_fan_out() -> None:
    # Up to fanout_low_destinations (4) destinations in a block: no down-ranking.
    three = {a.dst_ip for a in run(peers(3)) if a.src_ip == TORRENT}
    assert len(three) == 3
