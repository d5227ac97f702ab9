"""Rows of ``beaconwatch alerts``: one line per ECS alert document read from the alerts topic.

Works from the published JSON, not `Alert` objects: what a SIEM sees is what the table shows,
and records of other producers are told apart instead of crashing the reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from beaconwatch.alerting.statistics import STATISTIC
from beaconwatch.cli.scan_output import duration_text

# Where the statistics shown are in `beacon.*` (`alerting.statistics`).
_SCORE, _PERIOD, _CHECK_INS = (STATISTIC[name].ecs for name in ("score", "period_s", "check_ins"))

# (header, width, right-aligned); REASON takes what is left of the terminal (if 20 or more).
COLUMNS: tuple[tuple[str, int, bool], ...] = (
    ("TIME (UTC)", 19, False),
    ("SEVERITY", 8, False),
    ("SCORE", 5, True),
    ("SOURCE -> DESTINATION", 44, False),  # the longest IPv4 pair fits
    ("PERIOD", 10, True),  # "open 23h59m"
    ("CHECK-INS", 9, True),
    ("RULE", 15, False),
)
REASON_MIN_WIDTH = 20
_GAP = "  "


class NotAnAlertError(ValueError):
    """A record that is no beaconwatch alert document (says why)."""


@dataclass(frozen=True, slots=True)
class AlertRow:
    time: str
    severity: str
    score: float
    flow: str
    period: str
    check_ins: str
    rule: str
    reason: str


def parse_alert(value: bytes | None) -> AlertRow:
    if value is None:
        raise NotAnAlertError("empty record (a tombstone)")
    try:
        doc = orjson.loads(value)
    except orjson.JSONDecodeError:
        raise NotAnAlertError("not JSON") from None
    if not isinstance(doc, dict) or doc.get("event", {}).get("kind") != "alert":
        raise NotAnAlertError("JSON, but no ECS alert (event.kind is not 'alert')")
    try:
        return _row(doc)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise NotAnAlertError(f"an ECS alert without beaconwatch's fields ({exc!r})") from None


def _row(doc: dict[str, Any]) -> AlertRow:
    beacon = doc["beacon"]
    destination = doc["destination"]
    dst_ip = str(destination["ip"])
    dst = f"[{dst_ip}]" if ":" in dst_ip else dst_ip
    transport = doc.get("network", {}).get("transport", "?")
    if "duration_s" in beacon:  # the long-connection rule: no period, a session length
        period = "open " + duration_text(float(beacon["duration_s"]))
    else:
        period = duration_text(float(beacon[_PERIOD]))
    rule_id = str(doc["rule"]["id"])
    return AlertRow(
        time=datetime.fromisoformat(doc["@timestamp"]).strftime("%Y-%m-%d %H:%M:%S"),
        severity=str(beacon["severity"]),
        score=float(beacon[_SCORE]),
        flow=f"{doc['source']['ip']} -> {dst}:{destination['port']}/{transport}",
        period=period,
        check_ins=str(beacon.get(_CHECK_INS, "-")),
        rule=rule_id.removeprefix("beaconwatch-").removesuffix("-v1"),
        reason=str(doc["event"].get("reason", "")),
    )


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "~"


def _line(cells: tuple[str, ...], reason: str, width: int) -> str:
    parts = [
        c.rjust(w) if right else c.ljust(w) for c, (_, w, right) in zip(cells, COLUMNS, strict=True)
    ]
    room = width - len(_GAP.join(parts)) - len(_GAP)
    if room < REASON_MIN_WIDTH:  # a narrow terminal: no reason rather than a wrapped row
        return _GAP.join(parts).rstrip()
    return _GAP.join([*parts, _fit(reason, room)]).rstrip()


def header(width: int) -> str:
    return _line(tuple(name for name, _, _ in COLUMNS), "REASON", width)


def format_row(row: AlertRow, width: int) -> str:
    cells = (row.time, row.severity, f"{row.score:.3f}", row.flow, row.period, row.check_ins,
             row.rule)  # fmt: skip
    return _line(cells, row.reason, width)
