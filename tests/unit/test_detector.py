"""Detector decisions on synthetic beacons and noise, driven by flow batches and event time."""

from __future__ import annotations

import numpy as np
import orjson

from beaconwatch.alerting.alert import Alert
from beaconwatch.alerting.ecs import encode_alert
from beaconwatch.config import Config, with_overrides
from beaconwatch.core.clock import EventClock
from beaconwatch.core.detector import Detector
from beaconwatch.core.flows import FlowBatch
from tests.unit.flowgen import T0_MS, WALL_MS, beacon_rows, make_flows, poisson_rows


def detector(config: Config | None = None, clock: EventClock | None = None) -> Detector:
    return Detector(config or Config(), clock=clock, wall_clock_ms=lambda: WALL_MS)


def mixed_traffic() -> tuple[FlowBatch, set[tuple[str, str, int]]]:
    rows = []
    planted = set()
    for b, (period, jitter) in enumerate([(60, 0.1), (300, 0.2), (30, 0.0), (120, 0.15)]):
        src, dst = f"10.0.9.{b}", f"203.0.113.{b}"
        rows += beacon_rows(src, dst, period_s=period, count=40, jitter=jitter, seed=b)
        planted.add((src, dst, 443))
    for h in range(120):
        rows += poisson_rows(f"10.0.1.{h}", [f"198.51.100.{i}" for i in range(h % 3 + 1)],
                             mean_gap_s=45, count=60, seed=100 + h)  # fmt: skip
    rows.sort()
    return make_flows(rows), planted


def pairs(alerts: list[Alert]) -> set[tuple[str, str, int]]:
    return {(a.src_ip, a.dst_ip, a.dst_port) for a in alerts}


def test_alerts_exactly_the_planted_beacons() -> None:
    flows, planted = mixed_traffic()
    result = detector().process(flows)
    assert pairs(result.alerts) == planted
    assert result.flows_accepted == len(flows)
    assert not result.rejections


def test_alert_carries_period_and_window_in_event_time() -> None:
    flows = make_flows(beacon_rows("10.0.0.7", "203.0.113.50", period_s=60, count=30, jitter=0.05))
    clock = EventClock()
    (alert,) = detector(clock=clock).process(flows).alerts
    assert abs(alert.stats.period_s - 60) < 3
    assert alert.stats.connections >= 8
    assert alert.window_start_ms >= T0_MS
    assert alert.window_end_ms == alert.detected_ms <= clock.now_ms()
    assert alert.severity in {"low", "medium", "high", "critical"}


def test_cooldown_suppresses_realerts_until_it_passes() -> None:
    # 200 check-ins every 60 s = 3.3 h of event time with a 1 h cooldown: one alert per hour.
    config = with_overrides(Config(), alerting={"cooldown_s": 3600})
    flows = make_flows(beacon_rows("10.0.0.7", "203.0.113.50", period_s=60, count=200))
    alerts = detector(config).process(flows).alerts
    assert len(alerts) == 4
    gaps_ms = np.diff([a.detected_ms for a in alerts])
    assert (gaps_ms >= 3_600_000).all()
    assert len({a.event_id for a in alerts}) == 4


def test_alerts_do_not_depend_on_batching() -> None:
    flows, _ = mixed_traffic()
    whole = detector().process(flows).alerts
    det = detector()
    pieces = []
    for lo in range(0, len(flows), 997):
        pieces += det.process(flows.take(np.arange(lo, min(lo + 997, len(flows))))).alerts
    assert [encode_alert(a) for a in whole] == [encode_alert(a) for a in pieces]


def test_event_id_is_deterministic_across_replays() -> None:
    flows, _ = mixed_traffic()
    first = [a.event_id for a in detector().process(flows).alerts]
    second = [a.event_id for a in detector().process(flows).alerts]
    assert first == second and len(set(first)) == len(first)


def test_out_of_order_within_lateness_is_accepted_and_scored_in_time_order() -> None:
    rows = beacon_rows("10.0.0.7", "203.0.113.50", period_s=60, count=30)
    rng = np.random.default_rng(3)
    shuffled = [rows[i] for i in np.argsort(np.arange(30) + rng.uniform(0, 4, 30))]
    result = detector().process(make_flows(shuffled))
    assert not result.rejections
    assert len(result.alerts) == 1
    assert abs(result.alerts[0].stats.period_s - 60) < 1


def test_late_and_future_flows_are_rejected_with_reasons() -> None:
    config = with_overrides(Config(), state={"allowed_lateness_s": 60, "max_future_s": 60})
    det = detector(config)
    det.process(make_flows([(T0_MS + 600_000, "10.0.0.1", "192.0.2.1", 443, 6, 1)]))
    rows = [
        (T0_MS + 500_000, "10.0.0.1", "192.0.2.1", 443, 6, 1),  # 100 s late
        (T0_MS + 590_000, "10.0.0.1", "192.0.2.1", 443, 6, 1),  # 10 s late: fine
        (WALL_MS + 3_600_000, "10.0.0.1", "192.0.2.1", 443, 6, 1),  # in the future
    ]
    result = det.process(make_flows(rows))
    assert [(r.record_index, r.reason) for r in result.rejections] == [
        (0, "too_late"),
        (2, "too_far_future"),
    ]
    assert result.flows_accepted == 1
    assert det.stats.rejected_by_reason == {"too_late": 1, "too_far_future": 1}
    assert det.clock.now_ms() == T0_MS + 600_000  # the future flow did not move event time


def test_watermark_ignores_far_past_garbage_in_the_first_batch() -> None:
    rows = beacon_rows("10.0.0.7", "203.0.113.50", period_s=60, count=20)
    rows.insert(5, (86_400_000, "10.0.0.9", "192.0.2.1", 443, 6, 1))  # 1970-01-02
    result = detector().process(make_flows(rows))
    assert [r.reason for r in result.rejections] == ["too_late"]
    assert len(result.alerts) == 1


def test_ecs_document_has_the_fields_siems_need() -> None:
    flows = make_flows(beacon_rows("10.0.0.7", "203.0.113.50", period_s=60, count=30))
    (alert,) = detector().process(flows).alerts
    doc = orjson.loads(encode_alert(alert))
    assert doc["event"]["kind"] == "alert"
    assert doc["event"]["category"] == ["network", "intrusion_detection"]
    assert doc["event"]["id"] == alert.event_id
    assert doc["threat"]["tactic"]["id"] == "TA0011"
    assert doc["threat"]["technique"]["id"] == "T1071"
    assert doc["source"]["ip"] == "10.0.0.7"
    assert doc["destination"] == {"ip": "203.0.113.50", "port": 443}
    assert doc["network"]["transport"] == "tcp"
    assert doc["rule"]["id"] and doc["rule"]["name"]
    assert doc["event"]["start"] < doc["event"]["end"]
    assert "every 60 s" in doc["event"]["reason"] or "every 59 s" in doc["event"]["reason"]
    for key in ("score", "period_s", "connections", "interval_mad_s", "bytes_median"):
        assert key in doc["beacon"]
    assert alert.pair_key == b"10.0.0.7>203.0.113.50:443/6"


def test_lateness_is_judged_per_partition_when_catching_up_a_backlog() -> None:
    # A consumer catching up reads partition 0's whole backlog before partition 1's: the hours
    # of event time partition 0 ran ahead must not make partition 1's flows "late".
    early = beacon_rows("10.0.0.1", "203.0.113.1", period_s=60, count=200, seed=1)
    late = beacon_rows("10.0.0.2", "203.0.113.2", period_s=90, count=100, seed=2)
    det = detector()
    first = det.process(make_flows(early), partition=0)
    second = det.process(make_flows(late), partition=1)
    assert not first.rejections and not second.rejections
    assert pairs(first.alerts) == {("10.0.0.1", "203.0.113.1", 443)}
    assert pairs(second.alerts) == {("10.0.0.2", "203.0.113.2", 443)}
    # Within one partition, lateness still applies.
    again = det.process(make_flows(late[:1]), partition=0)
    assert [r.reason for r in again.rejections] == ["too_late"]


def test_score_all_pairs_reports_every_tracked_pair_with_its_stats() -> None:
    flows, planted = mixed_traffic()
    det = detector()
    det.process(flows)
    scores = det.score_all_pairs()
    assert len(scores) == det.table.tracked_pairs
    by_pair = {(s.src, s.dst, s.dst_port): s for s in scores}
    assert planted <= set(by_pair)
    threshold = Config().scoring.threshold
    for pair in planted:
        assert by_pair[pair].stats["score"] >= threshold
    benign = [s for p, s in by_pair.items() if p not in planted]
    assert benign and max(s.stats["score"] for s in benign) < threshold
    beacon = by_pair[("10.0.9.0", "203.0.113.0", 443)]
    assert abs(beacon.stats["period_s"] - 60) < 6
    assert beacon.first_seen_ms < beacon.last_seen_ms
