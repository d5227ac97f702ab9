"""How ``scan`` shows its results: a ranked table for people, JSON lines or CSV for machines,
and a progress bar on a terminal.

* ``table``: one row per pair (its strongest alert), ranked by severity then score, sized to
  the terminal; written when the scan ends (ranking needs every alert).
* ``jsonl``: every alert as an ECS (or OCSF) document, one per line, as the service publishes it.
* ``csv``: every alert as one row with a header, for spreadsheets and notebooks.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import IO, Any, BinaryIO, TextIO

from beaconwatch.alerting.alert import RULE_LONG_CONNECTION, Alert
from beaconwatch.alerting.ecs import encode_alert
from beaconwatch.alerting.rules import SEVERITY_LEVELS, reason_sentence
from beaconwatch.alerting.statistics import STATISTICS, encoded
from beaconwatch.domain.addresses import protocol_name

OUTPUT_FORMATS = ("table", "jsonl", "csv")
_SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITY_LEVELS)}


def is_tty(stream: IO[Any] | None) -> bool:
    """Whether ``stream`` is an interactive terminal (False for files, pipes, unknowns)."""
    isatty = getattr(stream, "isatty", None)
    if isatty is None:
        return False
    try:
        return bool(isatty())
    except (OSError, ValueError):
        return False


def terminal_width(stream: IO[Any] | None, default: int = 100) -> int:
    """Columns of the terminal behind ``stream``; ``$COLUMNS`` or ``default`` otherwise."""
    try:
        return os.get_terminal_size(stream.fileno()).columns  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return shutil.get_terminal_size((default, 24)).columns


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds")


def duration_text(seconds: float) -> str:
    """``23.1s``, ``5m00s``, ``2h05m``, ``3d04h``: short and sortable by eye."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    total = round(seconds)
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    if total < 86_400:
        return f"{total // 3600}h{total % 3600 // 60:02d}m"
    return f"{total // 86_400}d{total % 86_400 // 3600:02d}h"


def jitter(alert: Alert) -> float:
    """Width of the jitter range relative to the period (0 = a perfect clock)."""
    s = alert.stats
    ratio = getattr(s, "jitter_ratio", None)
    if ratio is not None:
        return float(ratio)
    mad_s = float(getattr(s, "interval_mad_s", 0.0))  # older stats: interval MAD
    return mad_s / s.period_s if s.period_s > 0 else 0.0


def pair_text(alert: Alert) -> str:
    dst = f"[{alert.dst_ip}]" if ":" in alert.dst_ip else alert.dst_ip  # IPv6 before a port
    return f"{alert.src_ip} -> {dst}:{alert.dst_port}/{protocol_name(alert.proto)}"


def rank_pairs(alerts: Sequence[Alert]) -> list[tuple[Alert, int, int, int]]:
    """One row per pair: (strongest alert, alerts of the pair, first seen, last seen), most
    severe and highest scoring first."""
    by_pair: dict[bytes, list[Alert]] = {}
    for alert in alerts:
        by_pair.setdefault(alert.pair_key, []).append(alert)
    rows = []
    for group in by_pair.values():
        best = max(group, key=lambda a: (_SEVERITY_RANK.get(a.severity, -1), a.stats.score))
        first = min(a.first_seen_ms for a in group)
        last = max(a.window_end_ms for a in group)
        rows.append((best, len(group), first, last))
    rows.sort(
        key=lambda r: (-_SEVERITY_RANK.get(r[0].severity, -1), -r[0].stats.score, r[0].pair_key)
    )
    return rows


# (header, minimum width, right-aligned); PAIR and REASON stretch, the others are fixed.
_COLUMNS: tuple[tuple[str, int, bool], ...] = (
    ("SEVERITY", 8, False),
    ("SCORE", 5, True),
    ("PAIR", 24, False),
    ("PERIOD", 7, True),
    ("JITTER", 6, True),
    ("CONNS", 5, True),
    ("ALERTS", 6, True),
    ("FIRST SEEN", 19, False),
    ("LAST SEEN", 19, False),
    ("REASON", 30, False),
)
# Dropped in this order while the table is wider than the terminal.
_DROP_ORDER = ("REASON", "ALERTS", "FIRST SEEN", "JITTER", "CONNS", "LAST SEEN")


def _cells(alert: Alert, count: int, first_ms: int, last_ms: int) -> dict[str, str]:
    return {
        "SEVERITY": alert.severity,
        "SCORE": f"{alert.stats.score:.2f}",
        "PAIR": pair_text(alert),
        # A long-connection alert has no period: the cell says how long the session lasted.
        "PERIOD": (
            "open " + duration_text(alert.duration_s)
            if alert.rule == RULE_LONG_CONNECTION
            else duration_text(alert.stats.period_s)
        ),
        "JITTER": "-" if alert.rule == RULE_LONG_CONNECTION else f"{jitter(alert) * 100:.0f}%",
        "CONNS": str(alert.stats.connections),
        "ALERTS": str(count),
        "FIRST SEEN": _time(first_ms),
        "LAST SEEN": _time(last_ms),
        "REASON": reason_sentence(alert),
    }


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "~"


NOTHING_FOUND = "No beaconing found.\n"


# Per pair key: (connections, first seen, last seen) over the whole input (`scan`).
PairTotals = Mapping[bytes, tuple[int, int, int]]


def render_table(
    alerts: Sequence[Alert],
    width: int,
    empty: str = NOTHING_FOUND,
    totals: PairTotals | None = None,
) -> str:
    """The ranked table as text no wider than ``width`` (if the terminal allows at all);
    ``empty`` when there are no alerts. With ``totals``, CONNS and FIRST/LAST SEEN describe
    each pair over the whole input, not the window of its alert."""
    if not alerts:
        return empty
    rows: list[dict[str, str]] = []
    for alert, count, first_ms, last_ms in rank_pairs(alerts):
        pair = _cells(alert, count, first_ms, last_ms)
        total = (totals or {}).get(alert.pair_key)
        if total is not None:
            conns, seen_first_ms, seen_last_ms = total
            pair["CONNS"] = str(conns)
            pair["FIRST SEEN"] = _time(min(first_ms, seen_first_ms))
            pair["LAST SEEN"] = _time(max(last_ms, seen_last_ms))
        rows.append(pair)
    minimum = {name: size for name, size, _ in _COLUMNS}
    sizes = {name: max(len(name), *(len(r[name]) for r in rows)) for name, _, _ in _COLUMNS}
    names = [name for name, _, _ in _COLUMNS]

    def over() -> int:
        return sum(sizes[n] for n in names) + 2 * (len(names) - 1) - width

    for name in _DROP_ORDER:
        if "REASON" in names and over() > 0:  # the reason gives way first, then columns go
            sizes["REASON"] -= max(0, min(over(), sizes["REASON"] - minimum["REASON"]))
        if over() <= 0:
            break
        names.remove(name)
    if over() > 0:
        sizes["PAIR"] = max(sizes["PAIR"] - over(), 12)
    right = {name for name, _, is_right in _COLUMNS if is_right}
    lines = []
    header = "  ".join(
        name.rjust(sizes[name]) if name in right else name.ljust(sizes[name]) for name in names
    ).rstrip()
    lines.append(header)
    for row in rows:
        cells = []
        for name in names:
            text = _fit(row[name], sizes[name])
            cells.append(text.rjust(sizes[name]) if name in right else text.ljust(sizes[name]))
        lines.append("  ".join(cells).rstrip())
    pairs = len(rows)
    lines.append(
        f"\n{len(alerts)} alert{'s' * (len(alerts) != 1)} on {pairs} pair{'s' * (pairs != 1)}"
    )
    return "\n".join(lines) + "\n"


# The alert's own columns, then every statistic of `alerting.statistics` in its CSV column.
CSV_FIELDS = (
    "event_id", "severity", "src_ip", "dst_ip", "dst_port", "transport", "first_seen",
    "window_start", "window_end", "detected", "rule", "duration_s",
    *(s.csv for s in STATISTICS), "reason",
)  # fmt: skip


def _csv_value(value: Any) -> Any:
    return round(value, 6) if isinstance(value, float) else value


def csv_row(alert: Alert) -> dict[str, Any]:
    row: dict[str, Any] = {
        "event_id": alert.event_id,
        "severity": alert.severity,
        "src_ip": alert.src_ip,
        "dst_ip": alert.dst_ip,
        "dst_port": alert.dst_port,
        "transport": protocol_name(alert.proto),
        "first_seen": _iso(alert.first_seen_ms),
        "window_start": _iso(alert.window_start_ms),
        "window_end": _iso(alert.window_end_ms),
        "detected": _iso(alert.detected_ms),
        "rule": alert.rule,
        "duration_s": alert.duration_s,
    }
    row.update({k: _csv_value(v) for k, v in encoded(alert.stats, "csv").items()})
    row["reason"] = reason_sentence(alert)
    return row


class AlertWriter:
    """Writes alerts in one of ``OUTPUT_FORMATS`` to a binary stream it may own."""

    def __init__(
        self,
        stream: BinaryIO,
        output_format: str,
        *,
        own: bool,
        width: int = 100,
        encode: Callable[[Alert], bytes] = encode_alert,  # the jsonl documents: ECS or OCSF
    ):
        if output_format not in OUTPUT_FORMATS:
            raise ValueError(f"unknown output format {output_format!r}")
        self._stream = stream
        self._format = output_format
        self._own = own
        self._encode = encode
        self._width = width
        self._held: list[Alert] = []  # the table is ranked, so it is written at the end
        self._text: io.TextIOWrapper | None = None
        self._csv: csv.DictWriter[str] | None = None
        self.written = 0
        self.empty_table = NOTHING_FOUND  # the table's text when nothing alerted
        # The pairs' figures over the whole input, asked for when the table is written.
        self.pair_totals: Callable[[Sequence[Alert]], PairTotals] | None = None

    def write(self, alert: Alert) -> None:
        self.written += 1
        if self._format == "jsonl":
            self._stream.write(self._encode(alert) + b"\n")
        elif self._format == "csv":
            if self._csv is None:
                self._text = io.TextIOWrapper(self._stream, encoding="utf-8", newline="")
                self._csv = csv.DictWriter(self._text, fieldnames=CSV_FIELDS)
                self._csv.writeheader()
            self._csv.writerow(csv_row(alert))
        else:
            self._held.append(alert)

    def close(self) -> None:
        if self._format == "table":
            totals = self.pair_totals(self._held) if self.pair_totals is not None else None
            table = render_table(self._held, self._width, self.empty_table, totals)
            self._stream.write(table.encode("utf-8"))
        elif self._format == "csv" and self._csv is None:
            self._stream.write((",".join(CSV_FIELDS) + "\r\n").encode())
        if self._text is not None:
            self._text.flush()
            self._text.detach()  # leave the byte stream open for its owner
        self._stream.flush()
        if self._own:
            self._stream.close()


class ProgressBar:
    """One self-overwriting status line on a terminal: position, flows, flows/s, alerts."""

    def __init__(self, stream: TextIO, width: int) -> None:
        self._stream = stream
        self._width = max(width - 1, 20)
        self._shown = False

    def show(
        self, fraction: float | None, records: int, flows: int, rate: float, alerts: int
    ) -> None:
        stats = f"{flows:,} flows  {rate:,.0f} flows/s  {alerts} alerts  ({records:,} records)"
        if fraction is not None:
            fraction = min(max(fraction, 0.0), 1.0)
            bar_len = max(min(30, self._width - len(stats) - 8), 5)
            filled = int(bar_len * fraction)
            line = f"[{'#' * filled}{'.' * (bar_len - filled)}] {fraction * 100:3.0f}%  {stats}"
        else:
            line = stats
        self._stream.write("\r" + line[: self._width].ljust(self._width))
        self._stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self._shown:
            self._stream.write("\r" + " " * self._width + "\r")
            self._stream.flush()
            self._shown = False
