"""Name channels: a beacon whose destination IP rotates across many /24s (a CDN with many
edges) but keeps its TLS SNI is one alert that names the domain (`state.name_channels`)."""

from __future__ import annotations

import dataclasses
import struct

import numpy as np
import orjson

from beaconwatch.alerting.alert import CHANNEL_NAME, CHANNEL_PAIR, Alert
from beaconwatch.alerting.ecs import encode_alert
from beaconwatch.alerting.ocsf import OcsfEncoder
from beaconwatch.alerting.rules import reason_sentence
from beaconwatch.config import Config, with_overrides
from beaconwatch.core.channels import NAME_REPORTED
from beaconwatch.core.detector import Detector
from beaconwatch.domain.addresses import ip_to_halves
from beaconwatch.domain.names import name_hash
from beaconwatch.state import snapshot
from beaconwatch.state.levels import NAME_LEVEL
from tests.unit.flowgen import WALL_MS, beacon_rows, make_flows, poisson_rows
from tests.unit.test_channels import Row, browsing

Named = tuple[Row, str]  # a flow row and its name ("" = none)
C2 = "cdn-c2.example.net"


def detector(config: Config | None = None) -> Detector:
    return Detector(config or Config(), wall_clock_ms=lambda: WALL_MS)


def named_batch(rows: list[Named]) -> object:
    flows = make_flows([row for row, _ in rows])
    hashes = np.array([name_hash(n) if n else 0 for _, n in rows], dtype=np.uint64)
    names = {name_hash(n): n for _, n in rows if n}
    return dataclasses.replace(flows, name_hash=hashes, names=names)


def run(det: Detector, rows: list[Named], batch: int = 50) -> list[Alert]:
    rows = sorted(rows)
    alerts: list[Alert] = []
    for i in range(0, len(rows), batch):
        alerts += det.process(named_batch(rows[i : i + batch])).alerts  # type: ignore[arg-type]
    return alerts


def edges(count: int, seed: int = 3) -> list[str]:
    """IPs of ``count`` different /24s."""
    rng = np.random.default_rng(seed)
    return [f"{int(a)}.{int(b)}.{int(c)}.{int(d)}" for a, b, c, d in
            rng.integers([23, 0, 0, 1], [200, 256, 256, 255], size=(count, 4))]  # fmt: skip


def cdn_beacon(src: str, name: str, *, count: int = 60, seed: int = 1) -> list[Named]:
    """A beacon reaching ``name`` at a random CDN edge (another /24 each time) per check-in."""
    ips = edges(200, seed)
    rng = np.random.default_rng(seed)
    rows = beacon_rows(src, ips[0], period_s=60, count=count, jitter=0.1, seed=seed)
    return [((t, s, ips[int(rng.integers(len(ips)))], p, pr, b), name)
            for t, s, _, p, pr, b in rows]  # fmt: skip


def unnamed(rows: list[Row]) -> list[Named]:
    return [(row, "") for row in rows]


def test_a_beacon_rotating_across_24s_with_one_sni_is_one_name_alert() -> None:
    det = detector()
    alerts = run(det, cdn_beacon("10.0.0.5", C2) + unnamed(browsing()))
    assert [(a.src_ip, a.channel, a.lifecycle) for a in alerts] == [
        ("10.0.0.5", CHANNEL_NAME, "new")
    ]
    alert = alerts[0]
    assert alert.dst_domain == C2
    assert alert.dst_ip in edges(200, 1)
    assert alert.dst_ips >= 5  # IP changes by the alert, counted by the promotion index
    assert alert.pair_key == f"10.0.0.5>{C2}:443/6".encode()
    assert 50 <= alert.stats.period_s <= 70
    assert f"to {C2} at " in reason_sentence(alert)
    doc = orjson.loads(encode_alert(alert))
    assert doc["destination"]["domain"] == C2 and doc["destination"]["ip"] == alert.dst_ip
    assert doc["beacon"]["channel"] == "name" and doc["beacon"]["destination_domain"] == C2
    ocsf = orjson.loads(OcsfEncoder()(alert))
    assert ocsf["unmapped"]["beacon"]["destination_domain"] == C2
    # The name row: keyed by the name's hash at NAME_LEVEL, not counted in fan-out.
    row = det.table.find(ip_to_halves("10.0.0.5"), (name_hash(C2), 0), 443 << 8 | 6 | NAME_LEVEL)
    assert row >= 0 and det.table.count[row] >= 40


def test_without_names_the_same_traffic_raises_nothing() -> None:
    # No pair repeats, no /24 repeats: only the name ties the check-ins together.
    rows = [(row, "") for row, _ in cdn_beacon("10.0.0.5", C2)] + unnamed(browsing())
    assert run(detector(), rows) == []
    off = with_overrides(Config(), state={"name_channels": False})
    assert run(detector(off), cdn_beacon("10.0.0.5", C2) + unnamed(browsing())) == []


def test_a_named_beacon_to_one_ip_is_its_pairs_alert_and_takes_no_name_row() -> None:
    rows = beacon_rows("10.0.0.7", "198.51.100.9", period_s=60, count=60, jitter=0.1, seed=2)
    det = detector()
    alerts = run(det, [(row, C2) for row in rows])
    assert [(a.channel, a.dst_ip) for a in alerts] == [(CHANNEL_PAIR, "198.51.100.9")]
    assert not (det.table.port_proto[det.table.used] & NAME_LEVEL).any()


def test_pair_alerts_are_dropped_while_the_name_channel_alerts() -> None:
    # Two IPs in turn (DNS round-robin over two /24s): each pair beacons at twice the period,
    # the name channel at the period; the name alerts first, the pairs are then not repeated.
    ips = ["198.51.100.9", "203.0.113.40"]
    rows = beacon_rows("10.0.0.8", ips[0], period_s=30, count=240, jitter=0.05, seed=4)
    named = [((t, s, ips[i % 2], p, pr, b), C2) for i, (t, s, _, p, pr, b) in enumerate(rows)]
    det = detector()
    alerts = run(det, named)
    assert [a.channel for a in alerts if a.lifecycle == "new"] == [CHANNEL_NAME]
    assert det.stats.alerts_suppressed_by_reason[NAME_REPORTED] >= 1


def test_a_name_every_host_polls_across_rotating_ips_is_not_an_alert() -> None:
    # A CDN-fronted update service polled by 40 hosts, each at its own edge per poll.
    rows: list[Named] = []
    for h in range(40):
        rows += cdn_beacon(f"10.0.2.{h}", "updates.vendor.example", count=60, seed=10 + h)
    rows += unnamed(browsing())
    det = detector()
    alerts = run(det, rows, batch=400)
    assert alerts == []
    assert det.stats.alerts_suppressed_by_reason[NAME_REPORTED] == 0


def test_unnamed_traffic_takes_no_name_row() -> None:
    det = detector()
    rows = poisson_rows("10.0.3.1", edges(50), mean_gap_s=30, count=200, seed=5)
    run(det, unnamed(rows))
    assert not (det.table.port_proto[det.table.used] & NAME_LEVEL).any()
    assert det.table.name_channels is not None and not det.table.name_channels.tags.any()


def test_name_channels_survive_a_snapshot_and_alert_as_if_never_stopped() -> None:
    rows = sorted(cdn_beacon("10.0.0.5", C2, count=90) + unnamed(browsing()))
    batches = [rows[i : i + 50] for i in range(0, len(rows), 50)]
    through = detector()
    expected = [a for b in batches for a in through.process(named_batch(b)).alerts]  # type: ignore[arg-type]
    assert [a.channel for a in expected if a.lifecycle == "new"] == [CHANNEL_NAME]
    # Cut after the channel was promoted (it has a name row) and before it alerted.
    cut = max(i for i, b in enumerate(batches) if b[-1][0][0] < expected[0].detected_ms) - 1
    before = detector()
    for b in batches[: cut + 1]:
        assert before.process(named_batch(b)).alerts == []  # type: ignore[arg-type]
    data = before.snapshot_partition(0)
    assert struct.unpack_from("<H", data, 8)[0] == snapshot.NAMES_VERSION
    after = detector()
    after.restore_partition(0, data)
    assert after.table.names.get(name_hash(C2)) == C2
    resumed = [a for b in batches[cut + 1 :] for a in after.process(named_batch(b)).alerts]  # type: ignore[arg-type]
    assert [(a.event_id, a.dst_domain, a.stats.score) for a in resumed] == [
        (a.event_id, a.dst_domain, a.stats.score) for a in expected
    ]


def test_pair_alerts_stay_dropped_for_a_name_channel_restored_from_a_snapshot() -> None:
    # The round-robin beacon above, stopped and restored after its name channel alerted:
    # the pairs' alerts are still the name channel's, as if the service never stopped. A
    # table that never had a name row skips the look-up (`NameChannels.active`).
    ips = ["198.51.100.9", "203.0.113.40"]
    rows = beacon_rows("10.0.0.8", ips[0], period_s=30, count=240, jitter=0.05, seed=4)
    named = [((t, s, ips[i % 2], p, pr, b), C2) for i, (t, s, _, p, pr, b) in enumerate(rows)]
    batches = [named[i : i + 50] for i in range(0, len(named), 50)]
    through = detector()
    expected = [[a.event_id for a in through.process(named_batch(b)).alerts]  # type: ignore[arg-type]
                for b in batches]  # fmt: skip
    cut = next(i for i, ids in enumerate(expected) if ids)  # the batch the name alerted in
    before = detector()
    assert before.table.name_channels is not None and not before.table.name_channels.active
    for b in batches[: cut + 1]:
        before.process(named_batch(b))  # type: ignore[arg-type]
    after = detector()
    after.restore_partition(0, before.snapshot_partition(0))
    assert after.table.name_channels is not None and after.table.name_channels.active
    resumed = [[a.event_id for a in after.process(named_batch(b)).alerts]  # type: ignore[arg-type]
               for b in batches[cut + 1 :]]  # fmt: skip
    assert resumed == expected[cut + 1 :]
    assert after.stats.alerts_suppressed_by_reason[NAME_REPORTED] >= 1


def test_a_snapshot_without_name_rows_is_the_old_version() -> None:
    det = detector()
    run(det, unnamed(browsing()))
    assert struct.unpack_from("<H", det.snapshot_partition(0), 8)[0] == snapshot.FORMAT_VERSION


def test_warm_up_compiles_the_name_kernels() -> None:
    # A service warms up before reading: the first named flows must not wait for numba.
    from beaconwatch.core import channels
    from beaconwatch.core.detector import warm_up
    from beaconwatch.state import name_channels

    warm_up(Config())
    assert name_channels.route_names.signatures
    assert channels._name_rows.signatures
