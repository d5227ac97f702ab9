"""Prefix channels: a beacon whose destination rotates within a /24 (IPv6 /48), one alert each."""

from __future__ import annotations

import numpy as np
import orjson

from beaconwatch.alerting.alert import CHANNEL_PAIR, CHANNEL_PREFIX, Alert
from beaconwatch.alerting.ecs import encode_alert
from beaconwatch.alerting.ocsf import OcsfEncoder
from beaconwatch.alerting.rules import reason_sentence
from beaconwatch.config import Config, with_overrides
from beaconwatch.core.channels import (
    PAIR_REPORTED,
    PREFIX_REPORTED,
    mask_prefix,
)
from beaconwatch.core.detector import Detector
from beaconwatch.domain.addresses import ip_to_halves
from beaconwatch.state.levels import PREFIX_LEVEL
from tests.unit.flowgen import WALL_MS, beacon_rows, make_flows, poisson_rows
from tests.unit.test_pair_table import assert_index_consistent

Row = tuple[int, str, str, int, int, int]


def detector(config: Config | None = None) -> Detector:
    return Detector(config or Config(), wall_clock_ms=lambda: WALL_MS)


def rotating(
    src: str, ips: list[str], *, period_s: float = 60, count: int = 60, cycle: bool = False
) -> list[Row]:
    """A beacon checking in to a random one of ``ips`` each time (a CDN edge), or to each in
    turn (``cycle``: a DNS round-robin)."""
    rng = np.random.default_rng(7)
    rows = beacon_rows(src, ips[0], period_s=period_s, count=count, jitter=0.1, seed=1)
    return [
        (t, s, ips[i % len(ips) if cycle else int(rng.integers(len(ips)))], p, pr, b)
        for i, (t, s, _, p, pr, b) in enumerate(rows)
    ]


def run(det: Detector, rows: list[Row], batch: int = 50) -> list[Alert]:
    rows = sorted(rows)
    alerts: list[Alert] = []
    for i in range(0, len(rows), batch):
        alerts += det.process(make_flows(rows[i : i + batch])).alerts
    return alerts


def browsing() -> list[Row]:
    rows: list[Row] = []
    for h in range(20):
        rows += poisson_rows(f"10.0.1.{h}", [f"198.51.100.{i}" for i in range(h % 4 + 1)],
                             mean_gap_s=40, count=80, seed=h)  # fmt: skip
    return rows


def test_prefixes_are_the_24_of_ipv4_and_the_48_of_ipv6() -> None:
    addresses = ["203.0.113.77", "2001:db8:1:2::9", "10.1.2.255"]
    halves = np.array([ip_to_halves(a) for a in addresses], dtype=np.uint64)
    hi, lo = mask_prefix(halves[:, 0], halves[:, 1])
    expected = [ip_to_halves(a) for a in ("203.0.113.0", "2001:db8:1::", "10.1.2.0")]
    assert list(zip(hi.tolist(), lo.tolist(), strict=True)) == expected


def test_a_beacon_rotating_over_a_24_is_one_prefix_alert() -> None:
    ips = [f"203.0.113.{i}" for i in range(1, 200)]
    det = detector()
    alerts = run(det, rotating("10.0.0.5", ips) + browsing())
    assert [(a.src_ip, a.channel, a.lifecycle) for a in alerts] == [
        ("10.0.0.5", CHANNEL_PREFIX, "new")
    ]
    alert = alerts[0]
    assert alert.dst_prefix == "203.0.113.0/24" and alert.dst_ip in ips
    assert alert.dst_ips >= 8  # the IPs it reached within the window, by the alert
    assert alert.pair_key == b"10.0.0.5>203.0.113.0/24:443/6"
    assert 50 <= alert.stats.period_s <= 70
    # Without prefix channels, the same traffic raises nothing: no pair repeats enough.
    assert run(detector(with_overrides(Config(), state={"prefix_channels": False})),
               rotating("10.0.0.5", ips) + browsing()) == []  # fmt: skip


def test_a_round_robin_of_three_ips_is_one_alert_not_four() -> None:
    # Each IP gets every third of 90 check-ins, a beacon of its own: the prefix alerts first
    # (it has every check-in) and its pairs' own alerts are dropped.
    ips = ["192.0.2.10", "192.0.2.11", "192.0.2.12"]
    det = detector()
    alerts = run(det, rotating("10.0.0.6", ips, count=90, cycle=True))
    assert [(a.channel, a.lifecycle, a.dst_prefix, a.dst_ips) for a in alerts] == [
        (CHANNEL_PREFIX, "new", "192.0.2.0/24", 3)
    ]
    assert det.stats.alerts_suppressed_by_reason[PREFIX_REPORTED] >= 3


def test_a_beacon_on_one_ip_is_a_pair_alert_only_and_costs_no_prefix_row() -> None:
    det = detector()
    alerts = run(det, beacon_rows("10.0.0.7", "203.0.113.50", period_s=60, count=60))
    assert [(a.channel, a.dst_ip, a.dst_prefix, a.dst_ips) for a in alerts] == [
        (CHANNEL_PAIR, "203.0.113.50", "", 1)
    ]
    # One IP per prefix: the channel is never promoted, no prefix row, nothing to drop.
    src, net = ip_to_halves("10.0.0.7"), ip_to_halves("203.0.113.0")
    assert det.table.find(src, net, 443 << 8 | 6 | PREFIX_LEVEL) == -1
    assert det.table.tracked_pairs == 1
    assert sum(det.stats.alerts_suppressed_by_reason.values()) == 0


def test_a_channel_is_promoted_at_its_second_ip_with_the_first_ips_history() -> None:
    # 10 check-ins to one IP, then one to a second IP of the /24: the prefix row starts
    # as a copy of the first IP's row and takes the second IP's check-in.
    rows = beacon_rows("10.0.0.7", "203.0.113.50", period_s=60, count=11)
    rows[-1] = (rows[-1][0], rows[-1][1], "203.0.113.51", *rows[-1][3:])
    det = detector()
    run(det, rows, batch=4)
    src, net = ip_to_halves("10.0.0.7"), ip_to_halves("203.0.113.0")
    first = det.table.find(src, ip_to_halves("203.0.113.50"), 443 << 8 | 6)
    prefix = det.table.find(src, net, 443 << 8 | 6 | PREFIX_LEVEL)
    assert prefix >= 0 and det.table.tracked_pairs == 3
    assert int(det.table.count[first]) == 10 and int(det.table.count[prefix]) == 11
    assert np.array_equal(det.table.ring_t[prefix, :10], det.table.ring_t[first, :10])
    assert int(det.table.first_seen_ms[prefix]) == rows[0][0]
    assert int(det.table.last_seen_ms[prefix]) == rows[-1][0]


def test_a_pair_that_alerted_keeps_its_channel_when_a_second_ip_joins() -> None:
    # 40 check-ins to one IP (alerted as a pair), then the same beacon moves between two.
    first = beacon_rows("10.0.0.8", "203.0.113.60", period_s=60, count=40, seed=2)
    later = rotating("10.0.0.8", ["203.0.113.60", "203.0.113.61"], count=40)
    shift = first[-1][0] - later[0][0] + 60_000
    det = detector()
    alerts = run(det, first + [(t + shift, *rest) for t, *rest in later])  # type: ignore[misc]
    assert {a.channel for a in alerts} == {CHANNEL_PAIR}
    assert alerts[0].lifecycle == "new"
    assert det.stats.alerts_suppressed_by_reason[PAIR_REPORTED] >= 1


def test_an_ipv6_beacon_rotating_within_a_48_is_one_prefix_alert() -> None:
    ips = [f"2001:db8:7:{i:x}::1" for i in range(1, 40)]
    alerts = run(detector(), rotating("10.0.0.9", ips))
    assert [(a.channel, a.dst_prefix) for a in alerts] == [(CHANNEL_PREFIX, "2001:db8:7::/48")]
    assert alerts[0].dst_ips >= 8


def test_the_alert_says_its_channel_in_ecs_ocsf_and_words() -> None:
    ips = [f"203.0.113.{i}" for i in range(1, 200)]
    (prefix,) = run(detector(), rotating("10.0.0.5", ips))
    (pair,) = run(detector(), beacon_rows("10.0.0.7", "203.0.113.50", period_s=60, count=60))
    ecs = orjson.loads(encode_alert(prefix))
    assert ecs["destination"]["ip"] == prefix.dst_ip
    assert {k: ecs["beacon"][k] for k in ("channel", "destination_prefix", "destination_ips")} == {
        "channel": "prefix", "destination_prefix": "203.0.113.0/24",
        "destination_ips": prefix.dst_ips,
    }  # fmt: skip
    assert orjson.loads(encode_alert(pair))["beacon"]["channel"] == "pair"
    assert "destination_prefix" not in orjson.loads(encode_alert(pair))["beacon"]
    ocsf = orjson.loads(OcsfEncoder(["10.0.0.0/8"])(prefix))["unmapped"]["beacon"]
    assert (ocsf["channel"], ocsf["destination_prefix"], ocsf["destination_ips"]) == (
        "prefix", "203.0.113.0/24", prefix.dst_ips,
    )  # fmt: skip
    assert f"{prefix.dst_ips} rotating IPs of 203.0.113.0/24" in reason_sentence(prefix)
    assert "rotating" not in reason_sentence(pair)


def test_a_restored_partition_keeps_its_prefix_channels() -> None:
    ips = [f"203.0.113.{i}" for i in range(1, 200)]
    rows = sorted(rotating("10.0.0.5", ips, count=90) + browsing())
    through = run(detector(), rows)
    cut = len(rows) // 3  # after the prefix alert: it goes on as updates of the same series
    before = detector()
    first = run(before, rows[:cut])
    after = detector()
    after.restore_partition(0, before.snapshot_partition(0))
    assert_index_consistent(after.table)
    rest = run(after, rows[cut:])
    assert [repr(a) for a in first + rest] == [repr(a) for a in through]
    assert first and first[0].channel == CHANNEL_PREFIX


def test_a_checkpoint_without_prefix_rows_restores_and_its_channels_start_fresh() -> None:
    # What a checkpoint of an earlier version holds: pair rows only.
    ips = [f"203.0.113.{i}" for i in range(1, 200)]
    rows = sorted(rotating("10.0.0.5", ips, count=90) + browsing())
    old = detector(with_overrides(Config(), state={"prefix_channels": False}))
    assert run(old, rows[:200]) == []
    new = detector()
    new.restore_partition(0, old.snapshot_partition(0))
    assert new.table.tracked_pairs == old.table.tracked_pairs
    alerts = run(new, rows[200:])
    assert [(a.channel, a.lifecycle) for a in alerts][:1] == [(CHANNEL_PREFIX, "new")]


def test_alerts_whose_rows_the_prefix_pass_evicted_are_judged_by_their_own_key() -> None:
    # A full table (64 rows, a 60 s window): a beacon alerts, then later in the same batch
    # one-off pairs fill the table, the last of them a second IP of its /24: no row is free
    # to promote that channel in the exact pass, so the prefix pass makes its row, evicting
    # the least recent, the beacon's pair row. The alert was read off its row before that
    # pass, and is judged by its own key.
    config = with_overrides(
        Config(), state={"max_pairs": 64, "window_s": 60, "long_window_s": 60}
    )  # fmt: skip
    beacon = beacon_rows("10.0.0.5", "203.0.113.50", period_s=10, count=20)
    later = beacon[-1][0] + 300_000
    one_offs: list[Row] = [(later, "10.1.1.1", "198.19.1.1", 443, 6, 500)]
    for i in range(21):  # 20 channels promoted in the exact pass (3 rows each), then one not
        one_offs += [(later + 2 * i + j, f"10.1.0.{i}", f"198.18.{i}.{j}", 443, 6, 500)
                     for j in (1, 2)]  # fmt: skip
    det = detector(config)
    alerts = det.process(make_flows(beacon + one_offs)).alerts
    src, dst = ip_to_halves("10.0.0.5"), ip_to_halves("203.0.113.50")
    assert det.table.find(src, dst, 443 << 8 | 6) == -1  # the beacon's row went
    last = det.table.find(ip_to_halves("10.1.0.20"), ip_to_halves("198.18.20.0"),
                          443 << 8 | 6 | PREFIX_LEVEL)  # fmt: skip
    assert last >= 0 and int(det.table.count[last]) == 1  # made by the prefix pass, unseeded
    assert_index_consistent(det.table)
    assert [(a.channel, a.dst_ip, a.lifecycle) for a in alerts] == [
        (CHANNEL_PAIR, "203.0.113.50", "new")
    ]
    assert sum(det.stats.alerts_suppressed_by_reason.values()) == 0


def test_a_table_that_grows_keeps_its_promoted_channels() -> None:
    # 3,000 one-off pairs amid a rotating beacon: the table grows past its first 1,024 rows
    # (the promotion index is rebuilt) and one-offs crowd the beacon's bucket, yet every
    # check-in still reaches the prefix row.
    ips = [f"203.0.113.{i}" for i in range(1, 200)]
    beacon = rotating("10.0.0.5", ips, count=60)
    middle = beacon[30][0]
    one_offs: list[Row] = [
        (middle + i, f"10.2.{i // 250}.{i % 250}", f"198.18.{i % 200}.1", 443, 6, 500)
        for i in range(3000)
    ]
    det = detector()
    alerts = run(det, beacon + one_offs, batch=500)
    assert det.table.capacity > 1024
    assert_index_consistent(det.table)
    src, net = ip_to_halves("10.0.0.5"), ip_to_halves("203.0.113.0")
    prefix = det.table.find(src, net, 443 << 8 | 6 | PREFIX_LEVEL)
    assert int(det.table.count[prefix]) == 60
    assert [(a.channel, a.lifecycle) for a in alerts][:1] == [(CHANNEL_PREFIX, "new")]
