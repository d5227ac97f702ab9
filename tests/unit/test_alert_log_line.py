"""One structured log line per alert: the key fields as logfmt, not the whole document."""

from __future__ import annotations

import dataclasses
import logging
import re

import pytest

from beaconwatch.alerting.log_line import alert_log_line, log_alerts
from tests.unit.siem_alerts import emitted_alerts

PAIR = re.compile(r'([a-z_][\w.]*)=("[^"]*"|\S+)')


def pairs(line: str) -> dict[str, str]:
    assert line.startswith("alert ")
    found = dict(PAIR.findall(line))
    # Nothing but pairs after the word "alert": every character is accounted for.
    rebuilt = "alert " + " ".join(f"{k}={v}" for k, v in found.items())
    assert rebuilt == line
    return {k: v.strip('"') for k, v in found.items()}


def test_a_beacon_alert_is_one_line_of_its_key_fields() -> None:
    beacon, _ = emitted_alerts()
    line = alert_log_line(beacon)
    assert "\n" not in line and len(line) < 400  # not the whole document
    got = pairs(line)
    assert got == {
        "rule": "beacon",
        "lifecycle": "new",
        "severity": beacon.severity,
        "score": f"{beacon.stats.score:.3f}",
        "src": "10.0.15.183",
        "dst": "198.51.100.11:8443/tcp",
        "period_s": f"{beacon.stats.period_s:.3g}",
        "check_ins": str(beacon.stats.check_ins),
        "event.id": beacon.event_id,
        "reason": got["reason"],
    }
    assert got["reason"].startswith("tcp/8443 every ")


def test_a_long_connection_alert_says_how_long_not_a_period() -> None:
    _, long_connection = emitted_alerts()
    got = pairs(alert_log_line(long_connection))
    assert got["rule"] == "long-connection" and "period_s" not in got
    assert got["duration_s"] == f"{long_connection.duration_s:.0f}"
    assert got["dst"] == "203.0.113.66:4444/tcp"
    assert got["event.id"] == long_connection.event_id


def test_an_ipv6_destination_keeps_its_port_apart() -> None:
    beacon, _ = emitted_alerts()
    v6 = dataclasses.replace(beacon, src_ip="fd00::5", dst_ip="2001:db8::11")
    assert pairs(alert_log_line(v6))["dst"] == "[2001:db8::11]:8443/tcp"


def test_log_alerts_writes_one_info_line_per_alert(caplog: pytest.LogCaptureFixture) -> None:
    alerts = emitted_alerts()
    with caplog.at_level(logging.INFO, logger="beaconwatch.alerts"):
        log_alerts(alerts)
    assert [r.getMessage() for r in caplog.records] == [alert_log_line(a) for a in alerts]
    assert {(r.name, r.levelno) for r in caplog.records} == {("beaconwatch.alerts", logging.INFO)}
