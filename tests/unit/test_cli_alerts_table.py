"""Rows of `beaconwatch alerts` from published alert documents (the Kafka side is tested in
tests/integration/test_cli_alerts.py)."""

from __future__ import annotations

import dataclasses

import orjson
import pytest

from beaconwatch.alerting.ecs import encode_alert
from beaconwatch.cli.alerts_table import NotAnAlertError, format_row, header, parse_alert
from tests.unit.siem_alerts import emitted_alerts


def test_a_long_connection_row_shows_how_long_it_was_open() -> None:
    _, long_connection = emitted_alerts()
    row = parse_alert(encode_alert(long_connection))
    hours, rest = divmod(round(long_connection.duration_s), 3600)
    assert row.period == f"open {hours}h{rest // 60:02d}m"
    assert row.check_ins == "-" and row.rule == "long-connection"
    assert row.flow == "10.0.0.66 -> 203.0.113.66:4444/tcp"


def test_an_ipv6_destination_is_bracketed() -> None:
    beacon, _ = emitted_alerts()
    v6 = dataclasses.replace(beacon, src_ip="fd00::5", dst_ip="2001:db8::11")
    assert parse_alert(encode_alert(v6)).flow == "fd00::5 -> [2001:db8::11]:8443/tcp"


def test_the_reason_is_cut_to_the_terminal_and_columns_stay_aligned() -> None:
    beacon, long_connection = emitted_alerts()
    rows = [format_row(parse_alert(encode_alert(a)), 160) for a in (beacon, long_connection)]
    head = header(160)
    assert all(len(r) <= 160 for r in [head, *rows])
    assert rows[0].endswith("~")  # cut, and says so
    # Too narrow for 20 characters of reason: the column goes, the others stay whole.
    narrow = format_row(parse_alert(encode_alert(beacon)), 100)
    assert narrow.endswith(" beacon-interval") and "REASON" not in header(100)
    for column in ("SEVERITY", "SCORE", "RULE", "REASON"):
        at = head.index(column)
        assert all(r[at - 1] == " " and r[at] != " " for r in rows), column


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (None, "tombstone"),
        (b"\x00garbage", "not JSON"),
        (b"[1, 2]", "no ECS alert"),
        (b'{"event": {"kind": "alert"}}', "without beaconwatch's fields"),
    ],
)
def test_a_record_that_is_no_alert_says_why(value: bytes | None, why: str) -> None:
    with pytest.raises(NotAnAlertError, match=why):
        parse_alert(value)


def test_an_alert_of_another_tool_is_no_beaconwatch_alert() -> None:
    beacon, _ = emitted_alerts()
    doc = orjson.loads(encode_alert(beacon))
    del doc["beacon"]
    with pytest.raises(NotAnAlertError, match="beaconwatch's fields"):
        parse_alert(orjson.dumps(doc))
