"""``scan`` output: ranked table, CSV, JSON lines, TTY detection and the progress bar."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from typing import Any

import pytest

from beaconwatch.alerting.alert import Alert
from beaconwatch.alerting.ecs import encode_alert
from beaconwatch.alerting.statistics import BeaconStats
from beaconwatch.cli.scan_output import (
    CSV_FIELDS,
    AlertWriter,
    ProgressBar,
    duration_text,
    is_tty,
    rank_pairs,
    render_table,
    terminal_width,
)


class FakeTty(io.StringIO):
    """A text stream that says it is a terminal (no real terminal in tests)."""

    def isatty(self) -> bool:
        return True


class FakeBinaryTty(io.BytesIO):
    def isatty(self) -> bool:
        return True


def make_stats(**values: Any) -> BeaconStats:
    """BeaconStats with the given values, zeros elsewhere (robust to fields added later)."""
    defaults: dict[str, Any] = {"int": 0, "str": "none", "float": 0.0}
    fields = {f.name: values.get(f.name, defaults.get(str(f.type), 0.0))
              for f in dataclasses.fields(BeaconStats)}  # fmt: skip
    return BeaconStats(**fields)


def make_alert(
    src: str, dst: str, port: int, score: float, severity: str, start_ms: int = 1_767_324_720_000,
    period_s: float = 60.0, mad_s: float = 3.0, n: int = 24, event: str = "e",
) -> Alert:  # fmt: skip
    stats = make_stats(score=score, period_s=period_s, jitter_ratio=mad_s / period_s,
                       connections=n, bytes_median=410.0)  # fmt: skip
    end_ms = start_ms + int(period_s * 1000) * (n - 1)
    return Alert(
        event_id=event, series_id=event, lifecycle="new", src_ip=src, dst_ip=dst,
        dst_port=port, proto=6,
        window_start_ms=start_ms, window_end_ms=end_ms, first_seen_ms=start_ms,
        detected_ms=end_ms, severity=severity, stats=stats,
    )  # fmt: skip


ALERTS = [
    make_alert("10.0.0.5", "203.0.113.9", 443, 0.83, "low", event="a"),
    make_alert("10.0.0.7", "198.51.100.20", 8080, 0.98, "critical", period_s=23.4, event="b"),
    make_alert(
        "10.0.0.5", "203.0.113.9", 443, 0.88, "medium", start_ms=1_767_330_000_000, event="c"
    ),
    make_alert("2001:db8:1::5", "2001:db8:ff::77", 53, 0.93, "high", period_s=3600, event="d"),
]


def test_rank_pairs_one_row_per_pair_most_severe_first() -> None:
    rows = rank_pairs(ALERTS)
    assert [(r[0].event_id, r[1]) for r in rows] == [("b", 1), ("d", 1), ("c", 2)]
    _, _, first_ms, last_ms = rows[2]
    assert first_ms == ALERTS[0].first_seen_ms and last_ms == ALERTS[2].window_end_ms


@pytest.mark.parametrize("width", [60, 80, 120, 200, 300])
def test_table_fits_the_terminal_and_keeps_the_essentials(width: int) -> None:
    text = render_table(ALERTS, width)
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines), text
    header = lines[0].split()
    assert header[:2] == ["SEVERITY", "SCORE"] and "PAIR" in header and "PERIOD" in header
    assert lines[1].startswith("critical") and "10.0.0.7 -> 198.51.100.20:8080/tcp" in lines[1]
    assert "23.4s" in lines[1]
    assert lines[-1] == "4 alerts on 3 pairs"
    if width >= 200:
        assert "REASON" in lines[0] and "tcp/8080" in lines[1].split("2026-01-02 03:40:58")[1]
        assert "2001:db8:1::5 -> [2001:db8:ff::77]:53/tcp" in text
        assert "2026-01-02 03:32:00" in text  # first seen, UTC


def test_table_without_alerts() -> None:
    assert render_table([], 80) == "No beaconing found.\n"


def test_duration_text() -> None:
    assert [duration_text(s) for s in (0.5, 23.44, 60, 299.6, 3600, 90061)] == [
        "0.5s", "23.4s", "1m00s", "5m00s", "1h00m", "1d01h",
    ]  # fmt: skip


def test_writer_formats() -> None:
    out = io.BytesIO()
    writer = AlertWriter(out, "jsonl", own=False)
    for alert in ALERTS:
        writer.write(alert)
    writer.close()
    assert out.getvalue() == b"".join(encode_alert(a) + b"\n" for a in ALERTS)

    out = io.BytesIO()
    writer = AlertWriter(out, "csv", own=False)
    for alert in ALERTS:
        writer.write(alert)
    writer.close()
    rows = list(csv.DictReader(io.StringIO(out.getvalue().decode())))
    assert list(rows[0]) == list(CSV_FIELDS)
    assert [r["event_id"] for r in rows] == ["a", "b", "c", "d"]  # every alert, in order
    assert rows[1]["dst_port"] == "8080" and rows[1]["transport"] == "tcp"
    assert float(rows[0]["jitter_ratio"]) == pytest.approx(0.05)
    assert float(rows[1]["period_s"]) == pytest.approx(23.4) and rows[1]["score"] == "0.98"
    assert not out.closed  # stdout is not ours to close

    out = io.BytesIO()
    AlertWriter(out, "csv", own=False).close()
    assert out.getvalue().decode().strip() == ",".join(CSV_FIELDS)

    out = io.BytesIO()
    writer = AlertWriter(out, "table", own=False, width=100)
    for alert in ALERTS:
        writer.write(alert)
    assert out.getvalue() == b""  # ranked: written at the end
    writer.close()
    assert out.getvalue().decode() == render_table(ALERTS, 100)


def test_tty_detection_and_width(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_tty(FakeTty()) and is_tty(FakeBinaryTty())
    assert not is_tty(io.StringIO()) and not is_tty(io.BytesIO()) and not is_tty(None)
    monkeypatch.setenv("COLUMNS", "77")
    assert terminal_width(FakeTty()) == 77  # no real terminal behind it: $COLUMNS


def test_progress_bar_overwrites_one_line_and_clears_it() -> None:
    err = FakeTty()
    bar = ProgressBar(err, 80)
    bar.show(0.5, 1000, 900, 123456.0, 2)
    bar.show(None, 2000, 1800, 123456.0, 2)
    text = err.getvalue()
    assert text.count("\r") == 2 and "\n" not in text
    assert re.search(r"\[(#+)(\.+)\]  50%  900 flows  123,456 flows/s  2 alerts", text)
    drawn = re.search(r"\[(#+)(\.+)\]", text)
    assert drawn is not None and abs(len(drawn.group(1)) - len(drawn.group(2))) <= 1
    assert all(len(part) <= 79 for part in text.split("\r"))
    bar.clear()
    assert err.getvalue().endswith("\r")
