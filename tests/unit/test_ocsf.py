"""OCSF Detection Findings (issue 15, step 5): alerts of the real detector mapped to class 2004
and validated against the OCSF 1.8.0 schema (tests/unit/ocsf_schema.py); mutated findings
must fail that validation, so it is not a check that always passes."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from beaconwatch.alerting.alert import RULE_BEACON, RULE_LONG_CONNECTION, Alert
from beaconwatch.alerting.ecs import LONG_CONNECTION_RULE_ID, RULE_ID, encode_alert
from beaconwatch.alerting.formats import alert_encoder
from beaconwatch.alerting.ocsf import OCSF_VERSION, OcsfEncoder, to_ocsf
from beaconwatch.config import Config, ConfigError, load_config, with_overrides
from beaconwatch.core.detector import Detector
from tests.unit.flowgen import T0_MS, WALL_MS, beacon_rows, make_flows
from tests.unit.ocsf_schema import ocsf_errors
from tests.unit.test_long_connections import C2, long_alerts, run, sessions

SRC, DST = "10.0.15.183", "198.51.100.11"


def detect(rows: list[Any], config: Config | None = None) -> list[Alert]:
    det = Detector(config or Config(), wall_clock_ms=lambda: WALL_MS)
    return det.process(make_flows(rows)).alerts


@pytest.fixture(scope="module")
def beacon() -> Alert:
    rows = beacon_rows(SRC, DST, period_s=80, count=40, jitter=0.1, port=8443, start_ms=T0_MS,
                       size=1200, seed=4)  # fmt: skip
    (alert,) = detect(rows)
    return dataclasses.replace(alert, partition=3)  # as the Kafka adapter sets it


@pytest.fixture(scope="module")
def new_and_update() -> tuple[Alert, Alert]:
    # 60 s x 100, then 300 s x 60: the changed sleep gives an update after the cooldown.
    first = beacon_rows("10.0.0.7", "203.0.113.50", period_s=60, count=100)
    second = beacon_rows("10.0.0.7", "203.0.113.50", period_s=300, count=60,
                         start_ms=first[-1][0], seed=1)  # fmt: skip
    new, update = detect(first + second, with_overrides(Config(), alerting={"cooldown_s": 3600}))
    assert (new.lifecycle, update.lifecycle) == ("new", "update")
    return new, update


@pytest.fixture(scope="module")
def long_connection() -> Alert:
    return long_alerts(run(sessions(*C2, starts_h=[1, 9, 17, 25], hours=3)))[0]


def test_a_beacon_alert_is_a_valid_detection_finding(beacon: Alert) -> None:
    doc = to_ocsf(beacon)
    assert ocsf_errors(doc, OCSF_VERSION) == []
    assert (doc["class_uid"], doc["category_uid"], doc["activity_id"]) == (2004, 2, 1)
    assert doc["type_uid"] == 200401 and doc["type_name"] == "Detection Finding: Create"
    assert doc["metadata"]["version"] == "1.8.0" and doc["metadata"]["uid"] == beacon.event_id
    assert doc["metadata"]["product"]["name"] == "beaconwatch"
    assert doc["time"] == beacon.detected_ms
    assert (doc["start_time"], doc["end_time"]) == (beacon.window_start_ms, beacon.window_end_ms)
    assert doc["severity_id"] == {"low": 2, "medium": 3, "high": 4, "critical": 5}[beacon.severity]
    assert doc["confidence_score"] == round(beacon.stats.score * 100)
    info = doc["finding_info"]
    assert info["uid"] == beacon.series_id
    assert info["analytic"]["uid"] == RULE_ID and info["types"] == ["C2 beaconing"]
    assert info["first_seen_time"] == beacon.first_seen_ms
    assert info["last_seen_time"] == beacon.window_end_ms
    assert info["created_time"] == beacon.detected_ms and "modified_time" not in info
    assert info["attacks"][0]["tactic"]["uid"] == "TA0011"
    (evidence,) = doc["evidences"]
    assert evidence["src_endpoint"] == {"ip": SRC}
    assert evidence["dst_endpoint"] == {"ip": DST, "port": 8443}
    assert evidence["connection_info"]["protocol_num"] == 6
    assert evidence["connection_info"]["protocol_name"] == "tcp"
    assert evidence["connection_info"]["direction_id"] == 2  # outbound
    assert {(o["type_id"], o["value"]) for o in doc["observables"]} == {
        (2, SRC), (2, DST), (11, "8443")
    }  # fmt: skip
    unmapped = doc["unmapped"]
    assert unmapped["rule"] == RULE_BEACON and unmapped["kafka_partition"] == 3
    # Every figure the detector measured is carried, none lost.
    assert unmapped["beacon"] == {
        **{f.name: getattr(beacon.stats, f.name) for f in dataclasses.fields(beacon.stats)},
        "channel": "pair",  # one destination IP (test_channels.py: a rotating prefix)
    }


def test_an_update_is_activity_update_of_the_same_finding(
    new_and_update: tuple[Alert, Alert],
) -> None:
    new, update = map(to_ocsf, new_and_update)
    for doc in (new, update):
        assert ocsf_errors(doc, OCSF_VERSION) == []
    assert (update["activity_id"], update["activity_name"]) == (2, "Update")
    assert update["type_uid"] == 200402
    assert update["finding_info"]["uid"] == new["finding_info"]["uid"]
    assert update["metadata"]["uid"] != new["metadata"]["uid"]
    assert update["finding_info"]["modified_time"] == new_and_update[1].detected_ms
    assert "created_time" not in update["finding_info"]
    assert update["unmapped"]["lifecycle"] == "update"
    assert update["unmapped"]["beacon"]["period_s"] != new["unmapped"]["beacon"]["period_s"]


def test_a_long_connection_alert_is_a_valid_detection_finding(long_connection: Alert) -> None:
    doc = to_ocsf(long_connection)
    assert ocsf_errors(doc, OCSF_VERSION) == []
    info = doc["finding_info"]
    assert info["analytic"]["uid"] == LONG_CONNECTION_RULE_ID
    assert info["analytic"]["type_id"] == 1 and info["types"] == ["C2 long connection"]
    assert doc["evidences"][0]["dst_endpoint"] == {"ip": C2[1], "port": C2[2]}
    unmapped = doc["unmapped"]
    assert unmapped["rule"] == RULE_LONG_CONNECTION and "beacon" not in unmapped
    assert unmapped["long_connection"]["duration_s"] == long_connection.duration_s
    assert unmapped["long_connection"]["sessions"] == long_connection.stats.connections
    assert "open for" in doc["message"]


def test_a_destination_in_the_internal_networks_is_lateral(beacon: Alert) -> None:
    inside = dataclasses.replace(beacon, dst_ip="10.9.9.9")
    doc = orjson.loads(OcsfEncoder(["10.0.0.0/8"])(inside))
    assert ocsf_errors(doc, OCSF_VERSION) == []
    info = doc["evidences"][0]["connection_info"]
    assert (info["direction_id"], info["boundary_id"]) == (3, 2)
    ipv6 = dataclasses.replace(beacon, src_ip="fd00::5", dst_ip="2001:db8::7")
    doc = orjson.loads(OcsfEncoder(["10.0.0.0/8", "fd00::/8"])(ipv6))
    assert ocsf_errors(doc, OCSF_VERSION) == []
    assert doc["evidences"][0]["connection_info"]["direction_id"] == 2


def test_alerting_format_picks_the_encoder(beacon: Alert) -> None:
    assert alert_encoder(Config()) is encode_alert  # ECS stays the default
    ocsf = with_overrides(Config(), alerting={"format": "ocsf"})
    assert orjson.loads(alert_encoder(ocsf)(beacon))["class_uid"] == 2004
    assert orjson.loads(alert_encoder(ocsf, "ecs")(beacon))["ecs"]["version"]
    from_env = load_config(env={"BEACONWATCH_ALERTING__FORMAT": "ocsf"})
    assert from_env.alerting.format == "ocsf"
    with pytest.raises(ConfigError, match=r"alerting\.format"):
        with_overrides(Config(), alerting={"format": "xml"})


Mutation = Callable[[dict[str, Any]], None]
MUTATIONS: dict[str, tuple[Mutation, str]] = {
    "unknown attribute": (lambda d: d.update(period_s=80.0), "period_s"),
    "unknown nested attribute": (
        lambda d: d["evidences"][0]["dst_endpoint"].update(transport="tcp"), "transport"),
    "time as text": (lambda d: d.update(time="2025-06-15T15:17:37Z"), "is not of type"),
    "port as text": (lambda d: d["evidences"][0]["dst_endpoint"].update(port="8443"), "type"),
    "port out of range": (lambda d: d["evidences"][0]["dst_endpoint"].update(port=70000), "70000"),
    "not an address": (lambda d: d["evidences"][0]["src_endpoint"].update(ip="10.0.0.300"),
                       "does not match"),
    "required missing": (lambda d: d["finding_info"].pop("uid"), "'uid' is a required"),
    "severity_id not in the enum": (lambda d: d.update(severity_id=7), "severity_id"),
    "activity_id not in the enum": (lambda d: d.update(activity_id=4), "activity_id"),
    "type_uid of another activity": (lambda d: d.update(type_uid=200402),
                                     "class_uid * 100 + activity_id"),
    "sibling not its id's caption": (lambda d: d.update(severity="Critical"), "severity is not"),
    "nested sibling": (lambda d: d["evidences"][0]["connection_info"].update(direction="Inbound"),
                       "direction is not"),
    "category of another class": (lambda d: d.update(category_uid=4), "category_uid"),
    "other schema version": (lambda d: d["metadata"].update(version="1.3.0"), "metadata.version"),
    "observable names nothing": (lambda d: d["observables"][0].update(name="src_endpoint.ip"),
                                 "does not hold"),
    "observable of the wrong type": (lambda d: d["observables"][2].update(type_id=2),
                                     "type_id is not"),
    "evidence without an endpoint": (lambda d: d.update(evidences=[{"name": "x"}]),
                                     "is not valid under any"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_a_mutated_finding_fails_validation(beacon: Alert, name: str) -> None:
    mutate, expected = MUTATIONS[name]
    doc = copy.deepcopy(to_ocsf(beacon))
    mutate(doc)
    errors = ocsf_errors(doc, OCSF_VERSION)
    assert errors, f"{name}: the validator accepted it"
    assert any(expected in e for e in errors), errors
