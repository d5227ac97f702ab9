"""Rule sparse-beacon: a pair's first three connections about a day apart, evenly, with alike
sizes, to a destination no other internal host reaches, alert once as a low-severity lead."""

from __future__ import annotations

import orjson

from beaconwatch.alerting.alert import RULE_SPARSE_BEACON, Alert
from beaconwatch.alerting.ecs import SPARSE_BEACON_RULE_ID, encode_alert, to_ecs
from beaconwatch.alerting.ocsf import OCSF_VERSION, to_ocsf
from beaconwatch.alerting.rules import reason_sentence
from beaconwatch.config import Config, with_overrides
from beaconwatch.core.detector import Detector
from tests.unit.flowgen import T0_MS, WALL_MS, FullRow, make_flows
from tests.unit.ocsf_schema import ocsf_errors
from tests.unit.siem_alerts import flatten
from tests.unit.test_siem_elasticsearch import accepts, mapped_type, merged_mappings

H = 3_600_000
C2 = "203.0.113.66"


def check_ins(hours: list[float], sizes: list[int], src: str = "10.0.0.66") -> list[FullRow]:
    return [(T0_MS + int(h * H), src, C2, 443, 6, b, 50_000 + i, T0_MS + int(h * H) + 400)
            for i, (h, b) in enumerate(zip(hours, sizes, strict=True))]  # fmt: skip


def run(rows: list[FullRow], **alerting: object) -> list[Alert]:
    config = with_overrides(Config(), alerting=alerting) if alerting else Config()
    det = Detector(config, wall_clock_ms=lambda: WALL_MS)
    alerts: list[Alert] = []
    for row in sorted(rows):  # one batch per connection: the idle sweep runs in between
        alerts += det.process(make_flows([row])).alerts
    return alerts


DAILY = [0.0, 22.5, 48.2]  # a 24 h sleep with 10 % jitter
SIZES = [2_010, 2_060, 1_998]


def test_a_daily_beacon_alerts_once_at_its_third_check_in() -> None:
    alerts = run(check_ins(DAILY, SIZES))
    assert [a.rule for a in alerts] == [RULE_SPARSE_BEACON]
    alert = alerts[0]
    assert alert.severity == "low"
    assert alert.detected_ms == T0_MS + int(48.2 * H)
    assert alert.stats.connections == 3
    assert abs(alert.stats.mean_interval_s - 24.1 * 3600) < 1
    assert to_ecs(alert)["rule"]["id"] == SPARSE_BEACON_RULE_ID
    assert to_ocsf(alert)["metadata"]["event_code"] == SPARSE_BEACON_RULE_ID
    assert "3 connections about 24.1 h apart" in reason_sentence(alert)


def test_a_first_sleep_past_the_window_keeps_the_pair() -> None:
    # 26 h after a single connection: the sweep's grace for one-connection pairs holds it.
    alerts = run(check_ins([0.0, 26.0, 48.0], SIZES))
    assert [a.rule for a in alerts] == [RULE_SPARSE_BEACON]


def test_one_tasked_check_in_of_three_still_alerts() -> None:
    assert len(run(check_ins(DAILY, [2_010, 48_000, 1_998]))) == 1


def test_no_alert_without_every_gate() -> None:
    assert run(check_ins([0.0, 20.0, 50.0], SIZES)) == []  # r = 0.2: uneven
    assert run(check_ins([0.0, 10.0, 20.5], SIZES)) == []  # 10 h: 4 will come, tested then
    assert run(check_ins(DAILY, [2_010, 48_000, 9_000])) == []  # no two sizes alike
    other = check_ins([40.0], [2_000], src="10.0.0.7")  # another internal host reaches it
    assert run(check_ins(DAILY, SIZES) + other) == []


def test_the_rule_can_be_turned_off() -> None:
    assert run(check_ins(DAILY, SIZES), sparse_min_interval_s=0) == []


def test_its_documents_are_valid_ocsf_and_indexable_as_mapped() -> None:
    (alert,) = run(check_ins(DAILY, SIZES))
    doc = to_ocsf(alert)
    assert ocsf_errors(doc, OCSF_VERSION) == []
    analytic = doc["finding_info"]["analytic"]
    assert analytic["uid"] == SPARSE_BEACON_RULE_ID and analytic["type"] == "Rule"
    assert doc["severity"] == "Low"
    mapping = merged_mappings()
    ecs = orjson.loads(encode_alert(alert))
    assert ecs["event"]["action"] == "sparse-beacon-detected"
    for path, value in flatten(ecs).items():
        es_type = mapped_type(mapping, path, value)
        assert es_type is not None and accepts(es_type, value), path
