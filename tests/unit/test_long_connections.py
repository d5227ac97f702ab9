"""C2 held in one session for hours (issue "Real traffic", step 3): the long-connection rule."""

from __future__ import annotations

import numpy as np
import orjson

from beaconwatch.alerting.alert import RULE_LONG_CONNECTION, Alert
from beaconwatch.alerting.ecs import LONG_CONNECTION_RULE_ID, encode_alert
from beaconwatch.config import Config, with_overrides
from beaconwatch.core.detector import Detector
from tests.unit.flowgen import T0_MS, WALL_MS, FullRow, make_flows, poisson_rows

HOUR_MS = 3_600_000
C2 = ("10.0.0.66", "203.0.113.66", 4444)


def sessions(src: str, dst: str, port: int, starts_h: list[float], hours: float,
             timeout_s: int = 1800, first_port: int = 50_000) -> list[FullRow]:  # fmt: skip
    """Sessions of ``hours`` each, exported in active-timeout pieces (one record per piece)."""
    rows: list[FullRow] = []
    for n, start_h in enumerate(starts_h):
        start = T0_MS + int(start_h * HOUR_MS)
        end = start + int(hours * HOUR_MS)
        for piece in range(start, end, timeout_s * 1000):
            rows.append((piece, src, dst, port, 6, 2_000, first_port + n,
                         min(piece + timeout_s * 1000, end)))  # fmt: skip
    return rows


def run(rows: list[FullRow], config: Config | None = None) -> list[Alert]:
    background: list[FullRow] = [
        (*r, 33_000 + i, r[0])  # type: ignore[misc]
        for i, r in enumerate(
            poisson_rows("10.0.1.1", ["198.51.100.1"], mean_gap_s=300, count=400, seed=1)
        )
    ]
    rows = sorted(rows + background)
    det = Detector(config or Config(), wall_clock_ms=lambda: WALL_MS)
    alerts: list[Alert] = []
    for i in range(0, len(rows), 25):
        alerts += det.process(make_flows(rows[i : i + 25])).alerts
    return alerts


def long_alerts(alerts: list[Alert]) -> list[Alert]:
    return [a for a in alerts if a.rule == RULE_LONG_CONNECTION]


def test_a_reverse_shell_reconnecting_three_times_a_day_is_alerted() -> None:
    alerts = run(sessions(*C2, starts_h=[1, 9, 17, 25], hours=3))
    found = long_alerts(alerts)
    # The third and fourth sessions (each within the window of the last), once each.
    assert [(a.src_ip, a.dst_ip, a.dst_port) for a in found] == [C2, C2]
    first = found[0]
    assert 2 * 3600 <= first.duration_s <= 3 * 3600
    assert first.window_start_ms == T0_MS + 17 * HOUR_MS
    assert first.severity == "low" and first.stats.score >= 0.8
    assert first.stats.connections == 3  # long sessions so far
    # Four starts exactly 8 h apart are a slow beacon as well (scoring/sparse.py), alerted by
    # that rule at the fourth; reconnections at irregular times are not.
    beacon = [a for a in alerts if a.rule != RULE_LONG_CONNECTION and a.dst_ip == C2[1]]
    assert [(a.detected_ms - T0_MS) / HOUR_MS for a in beacon] == [25.0]
    irregular = run(sessions(*C2, starts_h=[1, 9.4, 17.1, 25.6], hours=3))
    assert {a.rule for a in irregular if a.dst_ip == C2[1]} == {RULE_LONG_CONNECTION}
    doc = orjson.loads(encode_alert(first))
    assert doc["rule"]["id"] == LONG_CONNECTION_RULE_ID
    assert doc["event"]["action"] == "long-connection-detected"
    assert doc["beacon"]["duration_s"] == first.duration_s and "period_s" not in doc["beacon"]
    assert doc["event"]["reason"].startswith("tcp/4444 one connection open for 2")


def test_one_or_two_long_sessions_are_no_evidence() -> None:
    # A download, a meeting, an SSH login: one long session, or two, alert nothing.
    assert long_alerts(run(sessions(*C2, starts_h=[1, 9], hours=5))) == []
    # Nor sessions shorter than long_connection_s (2 h), however many.
    assert long_alerts(run(sessions(*C2, starts_h=list(np.arange(0, 40, 4.0)), hours=1.5))) == []
    # Nor sessions further apart than the window.
    assert long_alerts(run(sessions(*C2, starts_h=[0, 30, 60], hours=3))) == []


def test_one_record_per_session_counts_as_well() -> None:
    # Zeek logs a connection once, when it ends, with its whole duration.
    rows: list[FullRow] = [
        (T0_MS + h * HOUR_MS, *C2[:2], C2[2], 6, 10**5, 50_000 + h, T0_MS + (h + 4) * HOUR_MS)
        for h in (0, 6, 12)
    ]
    found = long_alerts(run(rows))
    assert len(found) == 1 and abs(found[0].duration_s - 4 * 3600) < 1


def test_a_destination_much_of_the_fleet_keeps_open_is_not_alerted() -> None:
    # A push service: 20 hosts hold sessions to it, three a day each.
    rows: list[FullRow] = []
    for h in range(20):
        rows += sessions(f"10.0.2.{h}", "203.0.113.200", 5228, [1 + h / 10, 9, 17], hours=3,
                         first_port=40_000 + 10 * h)  # fmt: skip
    assert long_alerts(run(rows)) == []


def test_the_rule_can_be_turned_off_or_tuned() -> None:
    rows = sessions(*C2, starts_h=[1, 9, 17], hours=3)
    off = with_overrides(Config(), alerting={"long_connection_s": 0})
    assert long_alerts(run(rows, off)) == []
    two = with_overrides(Config(), alerting={"long_connection_sessions": 2})
    assert len(long_alerts(run(rows, two))) == 2


def sampled_run(rows: list[FullRow], config: Config | None = None) -> list[Alert]:
    """`run`, every flow exported by a 1:100 packet-sampling exporter (sampling_rate 100)."""
    det = Detector(config or Config(), wall_clock_ms=lambda: WALL_MS)
    alerts: list[Alert] = []
    rows = sorted(rows)
    for i in range(0, len(rows), 25):
        batch = make_flows(rows[i : i + 25])
        batch.sampling_rate[:] = 100
        alerts += det.process(batch).alerts
    return alerts


def test_a_sampled_session_missing_pieces_is_still_one_session() -> None:
    # One 10 h session in 30 min pieces, three of which had no sampled packet and were never
    # exported (the synthetic office at 1:100: 19 benign pairs alerted this way). Cut at the
    # gaps it was four connections of 2 h or more, three "sessions" within the window.
    rows = sessions(*C2, starts_h=[1], hours=10.5)
    kept = [r for i, r in enumerate(rows) if i not in (6, 12, 16)]
    assert long_alerts(sampled_run(kept)) == []
    narrow = with_overrides(Config(), state={"sampled_continuation_gap_s": 1.0})
    assert len(long_alerts(sampled_run(kept, narrow))) == 1
    # Sessions that come back (new source ports) are still counted under sampling.
    back = sessions(*C2, starts_h=[1, 9, 17, 25], hours=3)
    assert len(long_alerts(sampled_run([r for i, r in enumerate(back) if i % 6 != 2]))) == 2
