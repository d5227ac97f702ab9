"""Every encoding of a fixed set of real alerts, byte for byte against golden files.

ECS and OCSF documents, the scan CSV and tables, the alerts table, the log line and the demo's
live rows of the alerts `golden_alerts` makes. The golden files were written by the code
before the score statistics came from one table; a change of any
byte is a change of what SIEMs, spreadsheets and people see. Run with UPDATE_GOLDEN=1 to
rewrite them after a deliberate change (and say so in CHANGELOG.md).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from beaconwatch.alerting.ecs import encode_alert
from beaconwatch.alerting.log_line import alert_log_line
from beaconwatch.alerting.ocsf import OcsfEncoder
from beaconwatch.cli import alerts_table, report
from beaconwatch.cli.scan_output import AlertWriter, render_table
from tests.unit.golden_alerts import golden_alerts

GOLDEN = Path(__file__).parents[1] / "fixtures" / "alert-encodings"
# 203.0.113.0/24 as internal too, so some findings are lateral and some outbound.
INTERNAL_CIDRS = ("10.0.0.0/8", "fd00::/8", "203.0.113.0/24")


def _lines(lines: list[str]) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode()


def _csv() -> bytes:
    out = io.BytesIO()
    writer = AlertWriter(out, "csv", own=False)
    for alert in golden_alerts():
        writer.write(alert)
    writer.close()
    return out.getvalue()


def _alerts_table(width: int) -> bytes:
    rows = [alerts_table.parse_alert(encode_alert(a)) for a in golden_alerts()]
    return _lines([alerts_table.header(width), *(alerts_table.format_row(r, width) for r in rows)])


def encodings() -> dict[str, bytes]:
    alerts = golden_alerts()
    ocsf = OcsfEncoder(INTERNAL_CIDRS)
    return {
        "ecs.jsonl": b"".join(encode_alert(a) + b"\n" for a in alerts),
        "ocsf.jsonl": b"".join(ocsf(a) + b"\n" for a in alerts),
        "scan.csv": _csv(),
        "scan-table-wide.txt": render_table(alerts, 220).encode(),
        "scan-table-narrow.txt": render_table(alerts, 90).encode(),
        "alerts-table-wide.txt": _alerts_table(200),
        "alerts-table-narrow.txt": _alerts_table(100),
        "log-lines.txt": _lines([alert_log_line(a) for a in alerts]),
        "demo-rows.txt": _lines([report.header(), *(report.alert_row(a) for a in alerts)]),
    }


@pytest.mark.parametrize("name", list(encodings()))
def test_an_encoding_of_the_golden_alerts_is_byte_identical(name: str) -> None:
    got = encodings()[name]
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(got)
    assert got == path.read_bytes(), f"{name} changed: diff it with {path}"


def test_the_golden_alerts_cover_what_the_encodings_treat_apart() -> None:
    alerts = golden_alerts()
    stats = [a.stats for a in alerts]
    assert {a.rule for a in alerts} == {"beacon", "long-connection"}
    assert {a.lifecycle for a in alerts} == {"new", "update"}
    assert {s.jitter_shape for s in stats} == {"none", "subtractive", "symmetric", "additive"}
    assert {s.direction_inferred for s in stats} == {True, False}
    assert {a.partition for a in alerts} == {0, 1, None}
    assert {a.proto for a in alerts} == {6, 17}
    assert any(":" in a.src_ip for a in alerts)
    assert any(s.missed_ratio > 0 for s in stats)
    assert any(s.sampling_rate > 1 for s in stats)
    assert any(s.connections_per_check_in > 1 for s in stats)
    assert any(s.prevalence_sources > 1 for s in stats)
