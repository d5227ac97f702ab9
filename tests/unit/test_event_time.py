"""Event time that never drops a flow it should keep (issue "Real traffic", step 7).

Each case was seen on real traffic: long connections reported at their end, an exporter whose
clock runs fast, one record stamped far ahead, a jump of weeks between two files.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from beaconwatch.alerting.alert import Alert
from beaconwatch.config import Config
from beaconwatch.core.detector import Detector
from beaconwatch.core.watermark import Watermark
from tests.unit.flowgen import T0_MS, WALL_MS, FullRow, Row, beacon_rows, make_flows, poisson_rows

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
BEACONS = [(f"10.0.9.{b}", f"203.0.113.{b}") for b in range(10)]


def detector(
    config: Config | None = None, wall_ms: Callable[[], int] = lambda: WALL_MS
) -> Detector:
    return Detector(config or Config(), wall_clock_ms=wall_ms)


def office(hours: float, start_ms: int = T0_MS, seed: int = 0) -> list[Row]:
    """10 beacons (60-330 s, 10 % jitter) among 60 hosts of human traffic, in time order."""
    rows: list[Row] = []
    for b, (src, dst) in enumerate(BEACONS):
        period_s = 60 + 30 * b
        count = int(hours * 3600 / period_s) - 1
        rows += beacon_rows(src, dst, period_s=period_s, count=count, jitter=0.1,
                            start_ms=start_ms, seed=seed + b)  # fmt: skip
    for h in range(60):
        rows += poisson_rows(f"10.0.1.{h}", [f"198.51.100.{h % 7}", f"198.51.100.{h % 5 + 10}"],
                             mean_gap_s=30, count=int(hours * 120), start_ms=start_ms,
                             seed=seed + 100 + h)  # fmt: skip
    rows.sort()
    return rows


class LiveClock:
    """A wall clock that reads each batch a second after its newest true flow time."""

    def __init__(self) -> None:
        self.now_ms = 0

    def __call__(self) -> int:
        return self.now_ms


def feed(
    det: Detector,
    rows: list[Row] | list[FullRow],
    batch: int = 400,
    live: tuple[LiveClock, list[int]] | None = None,
) -> list[Alert]:
    """The rows in batches, as a consumer polls them; every alert raised. ``live``: the
    detector's wall clock and each row's true time (what a correct clock would have said)."""
    alerts: list[Alert] = []
    for i in range(0, len(rows), batch):
        if live is not None:
            clock, true_ms = live
            clock.now_ms = max(true_ms[i : i + batch]) + 1_000
        alerts += det.process(make_flows(rows[i : i + batch])).alerts
    return alerts


def beacons_alerted(alerts: list[Alert]) -> set[tuple[str, str]]:
    return {(a.src_ip, a.dst_ip) for a in alerts if (a.src_ip, a.dst_ip) in BEACONS}


def test_office_traffic_alerts_every_beacon_and_rejects_nothing() -> None:
    det = detector()
    alerts = feed(det, office(3))
    assert beacons_alerted(alerts) == set(BEACONS)
    assert not det.stats.rejected_by_reason


def test_one_record_stamped_50_min_ahead_does_not_blind_the_rest() -> None:
    # Seen: one such record made the service reject 69 % of the good traffic as too late and
    # miss 8 of 10 beacons. The record itself is within max_future_s of the wall clock.
    rows = office(3)
    at = len(rows) // 6
    true_ms = [r[0] for r in rows]
    rows.insert(at, (rows[at][0] + 50 * 60_000, "10.0.1.3", "198.51.100.3", 443, 6, 900))
    true_ms.insert(at, rows[at + 1][0])
    clock = LiveClock()
    det = detector(wall_ms=clock)
    alerts = feed(det, rows, live=(clock, true_ms))
    assert beacons_alerted(alerts) == set(BEACONS)
    assert det.stats.rejected_by_reason["too_late"] == 0
    assert det.stats.flows_ahead_total == 1
    (example,) = [det.stats.ahead_example]
    assert example is not None and example.src_ip == "10.0.1.3"
    assert 45 * 60 <= example.ahead_s <= 50 * 60  # ahead of the wall clock at its batch


def test_an_exporter_15_min_fast_on_1_percent_of_the_flows_blinds_nothing() -> None:
    # Seen: 71 % of the good traffic rejected, all 10 beacons missed. The fast exporter's
    # flows come in runs (one export packet holds many flows), not one by one.
    rows = office(3)
    rng = np.random.default_rng(5)
    fast = np.zeros(len(rows), dtype=bool)
    while fast.mean() < 0.01:
        at = int(rng.integers(0, len(rows) - 20))
        fast[at : at + int(rng.integers(5, 20))] = True
    skewed = [
        (r[0] + 15 * 60_000, *r[1:]) if f and r[1:3] not in BEACONS else r
        for r, f in zip(rows, fast, strict=True)
    ]
    clock = LiveClock()
    det = detector(wall_ms=clock)
    alerts = feed(det, skewed, live=(clock, [r[0] for r in rows]))
    assert beacons_alerted(alerts) == set(BEACONS)
    assert det.stats.rejected_by_reason["too_late"] == 0
    # Every fast flow is counted as ahead of the wall clock, and nothing else.
    n_fast = sum(1 for r, f in zip(rows, fast, strict=True) if f and r[1:3] not in BEACONS)
    assert det.stats.flows_ahead_total == n_fast


def test_a_skewed_minority_in_one_large_batch_does_not_move_the_watermark() -> None:
    # A file of old flows: the wall clock says nothing, the partition's recent flows do.
    rows = office(1)
    det = detector()
    feed(det, rows)
    before = det.partition(0).watermark_ms
    assert before is not None
    last = rows[-1][0]
    ahead = [(last + 40 * 60_000 + i, "10.0.1.1", "198.51.100.1", 443, 6, 1) for i in range(30)]
    det.process(make_flows(ahead + [(last + i, "10.0.1.2", "198.51.100.2", 443, 6, 1)
                                    for i in range(1, 200)]))  # fmt: skip
    after = det.partition(0).watermark_ms
    half_lateness_ms = Config().state.allowed_lateness_s * 1000 / 2
    assert after is not None and after - last <= half_lateness_ms + 1_000
    good = det.process(make_flows([(last - 4 * 60_000, "10.0.1.4", "198.51.100.4", 443, 6, 1)]))
    assert not good.rejections


def test_a_long_connection_is_judged_late_by_its_end_not_its_start() -> None:
    # Zeek writes a connection when it ends; exporters send long flows at their active
    # timeout. A 2 h session whose record arrives now started far behind the newest starts.
    rows = office(3)
    det = detector()
    feed(det, rows)
    now_ms = rows[-1][0]
    long_session: FullRow = (now_ms - 2 * HOUR_MS, "10.0.1.8", "198.51.100.99", 22, 6, 10**6,
                             50_000, now_ms - 1_000)  # fmt: skip
    ended_long_ago: FullRow = (now_ms - 3 * HOUR_MS, "10.0.1.9", "198.51.100.98", 22, 6, 10**6,
                               50_001, now_ms - HOUR_MS)  # fmt: skip
    watermark_ms = det.partition(0).watermark_ms
    assert watermark_ms is not None
    result = det.process(make_flows([long_session, ended_long_ago]))
    assert result.flows_accepted == 1
    (rejection,) = result.rejections
    assert rejection.record_index == 1 and rejection.reason == "too_late"
    # The figure is how long before the watermark the flow could last have been exported.
    late_s = (watermark_ms - (now_ms - HOUR_MS)) / 1000
    assert f"ended {late_s:.0f} s before" in rejection.detail


def test_a_jump_of_47_days_between_batches_keeps_detecting() -> None:
    # Seen: an old file scanned before a new one gave 0 alerts; every flow counted accepted
    # (ring times are 32-bit ms after the partition's epoch, 49.7 days).
    for jump_days in (47, 60, 400):
        det = detector(wall_ms=lambda: T0_MS + 500 * DAY_MS)
        old = feed(det, office(3))
        new = feed(det, office(3, start_ms=T0_MS + jump_days * DAY_MS, seed=50))
        assert beacons_alerted(old) == set(BEACONS)
        assert beacons_alerted(new) == set(BEACONS), jump_days
        assert not det.stats.rejected_by_reason
        # The pairs of the old file were dropped (idle for longer than the window), not
        # carried into the new one's windows: each beacon's new series starts afresh.
        first = {}
        for a in new:
            first.setdefault((a.src_ip, a.dst_ip), a)
        assert {a.lifecycle for a in first.values()} == {"new"}
        assert min(a.first_seen_ms for a in new) >= T0_MS + jump_days * DAY_MS


def test_a_flow_too_far_ahead_for_the_state_is_rejected_not_stored_wrongly() -> None:
    # Far beyond anything live traffic sends (max_future_s is measured from the wall clock),
    # but a file of old data can hold it. It must not be stored with a clipped time.
    det = detector()
    rows = office(1)
    far: Row = (rows[-1][0] + 48 * DAY_MS, "10.0.9.0", "203.0.113.0", 443, 6, 400)
    feed(det, [*rows[:-1], far])
    assert det.stats.rejected_by_reason == {"too_far_future": 1}


def test_lateness_is_still_enforced_for_flows_that_ended_long_ago() -> None:
    det = detector()
    rows = office(1)
    feed(det, rows)
    old = det.process(make_flows([(rows[0][0], "10.0.1.1", "198.51.100.1", 443, 6, 10)]))
    assert [r.reason for r in old.rejections] == ["too_late"]


def test_watermark_rules_one_by_one() -> None:
    lateness_ms, wall_ms = 600_000, T0_MS + DAY_MS
    w = Watermark(lateness_ms, clock_tolerance_ms=60_000)
    assert w.now_ms is None
    w.start_at(T0_MS)
    # A quiet partition (a flow per poll): its newest flow counts, even hours later.
    w.observe(np.array([T0_MS + 3 * HOUR_MS]), wall_ms)
    assert w.now_ms == T0_MS + 3 * HOUR_MS
    # Never back.
    w.observe(np.array([T0_MS]), wall_ms)
    assert w.now_ms == T0_MS + 3 * HOUR_MS
    # A batch: its median + half the lateness at most, whatever its newest flows claim.
    base = T0_MS + 4 * HOUR_MS
    batch = np.array([base + i * 1000 for i in range(100)] + [base + 5 * HOUR_MS] * 40)
    seen = w.observe(batch, wall_ms)
    typical = int(np.sort(batch[::1])[len(batch) // 2])
    assert seen.watermark_ms == typical + lateness_ms // 2
    assert not seen.ahead.any()
    # Ahead of the wall clock by more than the tolerance: flagged, never followed.
    seen = w.observe(np.array([wall_ms + 61_000, wall_ms + 59_000]), wall_ms)
    assert seen.ahead.tolist() == [True, False]
    assert w.now_ms == wall_ms + 59_000
    assert w.newest_ms == wall_ms + 59_000
